"""Seeded synthetic providers and the demo scenario.

::

    from entrepot import demo

    manifest = demo.generate(Path("demo-files"), seed=7, scale=1.0)
    for entry in manifest.files:
        print(entry.provider, entry.path, entry.rows, entry.defects)
"""

from entrepot.demo.generate import DEFAULT_SEED, MAX_SCALE, generate
from entrepot.demo.manifest import MANIFEST_NAME, DemoFile, Manifest
from entrepot.demo.population import Population, make_population

__all__ = [
    "DEFAULT_SEED",
    "MANIFEST_NAME",
    "MAX_SCALE",
    "DemoFile",
    "Manifest",
    "Population",
    "generate",
    "make_population",
]
