"""The public surface is pinned: a change to it is a deliberate change to this file."""

from __future__ import annotations

import importlib

import pytest

import entrepot

PACKAGES = (
    "entrepot",
    "entrepot.engine",
    "entrepot.errors",
    "entrepot.exchange",
    "entrepot.privacy",
    "entrepot.standards",
    "entrepot.transparency",
    "entrepot.vault",
)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_exists(name: str) -> None:
    module = importlib.import_module(name)
    for public in module.__all__:
        assert getattr(module, public) is not None, f"{name}.{public}"


def test_top_level_surface() -> None:
    assert sorted(entrepot.__all__) == [
        "Connection",
        "EntrepotError",
        "Settings",
        "__version__",
        "connect",
    ]
