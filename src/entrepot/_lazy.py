"""Names a package exports from modules it imports only when a name is first read.

A command that lists the catalog should not load pandas, OpenDP, sqlglot or DuckDB
because a package it touches re-exports a name from a module that does; each CLI
start-up used to pay about 1 s of CPU for them. A package keeps its public names in
``__all__`` and its type-checking imports, and hands the heavy ones to :func:`lazy`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy"]


def lazy(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each of ``names`` from its module, once."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = importlib.import_module(module)
        # Importing a submodule binds its name in the package (``plan`` the module over
        # ``plan`` the function): every name it exports is bound again after it.
        for exported, source in names.items():
            if source == module:
                setattr(sys.modules[package], exported, getattr(loaded, exported))
        return getattr(loaded, name)

    return __getattr__
