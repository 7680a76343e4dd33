"""Seeded synthetic providers and the demo scenario.

::

    from entrepot import demo

    manifest = demo.generate(Path("demo-files"), seed=7, scale=1.0)
    for entry in manifest.files:
        print(entry.provider, entry.path, entry.rows, entry.defects)

    result = demo.run(Path(".demo-exchange"), fresh=True)   # the whole scenario
    result.data("publish")["datasets"]
"""

from entrepot.demo.generate import DEFAULT_SEED, MAX_SCALE, generate
from entrepot.demo.manifest import MANIFEST_NAME, DemoFile, Manifest
from entrepot.demo.population import Population, make_population
from entrepot.demo.scenario import (
    DEMO_FOLDER,
    STEPS,
    Demo,
    DemoResult,
    Reporter,
    Step,
    is_demo_home,
    run,
)

__all__ = [
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
