"""The demo's public surface is pinned: changing it is a deliberate change to this file."""

from __future__ import annotations

import entrepot.demo
from entrepot.demo import STEPS


def test_the_demo_package_names_its_surface() -> None:
    assert sorted(entrepot.demo.__all__) == sorted(
        [
            "DEFAULT_SEED",
            "DEMO_FOLDER",
            "MANIFEST_NAME",
            "MAX_SCALE",
            "STEPS",
            "Demo",
            "DemoFile",
            "DemoResult",
            "Manifest",
            "Population",
            "Reporter",
            "Step",
            "generate",
            "is_demo_home",
            "make_population",
            "run",
        ]
    )
    for name in entrepot.demo.__all__:
        assert getattr(entrepot.demo, name) is not None, name


def test_the_scenario_steps_are_named_once_and_in_order() -> None:
    names = [step.name for step in STEPS]
    assert len(set(names)) == len(names)
    assert names[:5] == ["generate", "node", "providers", "publish", "catalog"]
    assert names[-1] == "next"
