"""The seeded generator of the demo providers' raw files.

``generate(directory, seed=7, scale=1.0)`` writes, into ``directory``:

- one raw file per provider, each in its provider's own local format;
- the provider's mapping YAML (and code files) that turns it into the standard;
- ``manifest.json``: every file, its provider, standard, rows and injected defects.

The output is a pure function of ``(seed, scale)``: the same arguments write the
same bytes. Each provider draws from its own random stream, spawned from the seed,
so changing one provider's recipe leaves the others' files unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np

from entrepot.demo._context import MAPPINGS, Context, regions
from entrepot.demo._hospitals import highland, riverside
from entrepot.demo._payments import jade_pay
from entrepot.demo._table import RawTable
from entrepot.demo._telecom import skyline
from entrepot.demo.manifest import DemoFile, Manifest
from entrepot.demo.population import make_population
from entrepot.errors import InvalidInput

__all__ = ["DEFAULT_SEED", "MAX_SCALE", "check_arguments", "generate"]

DEFAULT_SEED = 7
# At scale 1 each provider writes 25-55k rows; 100 is about 5M rows, 1 GB of CSV.
MAX_SCALE = 100.0
_PEOPLE_PER_SCALE = 20_000

Builder = Callable[[Context, Path], tuple[DemoFile, RawTable]]

# The providers, in the order they are generated and published.
BUILDERS: tuple[Builder, ...] = (riverside, highland, skyline, jade_pay)


def check_arguments(seed: int, scale: float) -> None:
    """Refuse a seed or scale the generator cannot use, before anything is written."""
    if not 0 < scale <= MAX_SCALE:
        raise InvalidInput(
            f"demo scale {scale:g} is out of range",
            hint=f"use a scale above 0 and at most {MAX_SCALE:g} (1 is about 150k rows)",
        )
    if seed < 0:
        raise InvalidInput(f"demo seed {seed} is negative", hint="use a seed of 0 or more")


def generate(directory: Path, *, seed: int = DEFAULT_SEED, scale: float = 1.0) -> Manifest:
    """Write the demo providers' raw files, mappings and manifest into ``directory``."""
    check_arguments(seed, scale)
    directory.mkdir(parents=True, exist_ok=True)
    streams = np.random.SeedSequence(seed).spawn(1 + len(BUILDERS))
    areas = regions()
    population = make_population(
        np.random.default_rng(streams[0]),
        size=max(500, round(_PEOPLE_PER_SCALE * scale)),
        districts=[area.districts for area in areas],
    )
    files, people = [], {}
    for build, stream in zip(BUILDERS, streams[1:], strict=True):
        context = Context(np.random.default_rng(stream), population, areas, scale)
        entry, table = build(context, directory)
        files.append(entry)
        people[entry.path] = table.clean_people()
    for resource in MAPPINGS.iterdir():
        if resource.name.endswith((".yaml", ".csv")):
            (directory / resource.name).write_bytes(resource.read_bytes())
    manifest = Manifest(
        seed=seed,
        scale=scale,
        people=len(population),
        files=tuple(files),
        overlaps={
            f"{a}|{b}": len(people[a] & people[b]) for a, b in combinations(sorted(people), 2)
        },
    )
    manifest.write(directory)
    return manifest
