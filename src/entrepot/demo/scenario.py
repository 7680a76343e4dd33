"""The demo scenario: a seeded exchange built step by step through the library.

A scenario is a tuple of small :class:`Step` functions run in order over one
:class:`Demo`. Each returns plain, JSON-ready data that a :class:`Reporter` shows
as it arrives (the CLI renders it with Rich), so a capability that lands later
adds one step to :data:`STEPS` and one renderer, nothing else.

The raw files, their mappings and the manifest live in ``<home>/demo/``; that
folder is also what marks a home as a demo exchange, which ``fresh=True`` may wipe.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from entrepot import standards
from entrepot.demo.generate import DEFAULT_SEED, generate
from entrepot.demo.manifest import MANIFEST_NAME, DemoFile, Manifest
from entrepot.errors import Conflict
from entrepot.exchange.catalog import Catalog
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider, list_providers

__all__ = [
    "DEMO_FOLDER",
    "SEARCH",
    "STEPS",
    "Demo",
    "DemoResult",
    "Reporter",
    "Step",
    "is_demo_home",
    "run",
]

# The folder of a demo home that holds the raw files; its manifest marks the home.
DEMO_FOLDER = "demo"
# What the catalog step searches for: words a consumer looking for health data would use.
SEARCH = "visits district"


class Reporter(Protocol):
    """Shows a scenario as it runs: steps starting and ending, progress in between."""

    def begin(self, step: Step) -> None: ...

    def progress(self, task: str, done: int, total: int) -> None: ...

    def end(self, step: Step, data: dict[str, Any]) -> None: ...


class _Silent:
    def begin(self, step: Step) -> None:
        del step

    def progress(self, task: str, done: int, total: int) -> None:
        del task, done, total

    def end(self, step: Step, data: dict[str, Any]) -> None:
        del step, data


@dataclass
class Demo:
    """The state a scenario's steps share."""

    settings: Settings
    seed: int
    scale: float
    reporter: Reporter
    manifest: Manifest | None = None
    node: Node | None = None

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def files(self) -> Path:
        return self.home / DEMO_FOLDER

    def opened(self) -> Node:
        if self.node is None:
            raise Conflict(
                "the demo step needs the node, which no earlier step opened",
                hint="keep the `node` step before the steps that use the exchange",
            )
        return self.node

    def demo_manifest(self) -> Manifest:
        if self.manifest is None:
            self.manifest = Manifest.read(self.files)
        return self.manifest


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    run: Callable[[Demo], dict[str, Any]]


@dataclass(frozen=True)
class DemoResult:
    home: Path
    steps: list[tuple[Step, dict[str, Any]]] = field(default_factory=list)

    def data(self, name: str) -> dict[str, Any]:
        for step, data in self.steps:
            if step.name == name:
                return data
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"home": str(self.home), "steps": {step.name: data for step, data in self.steps}}


def is_demo_home(home: Path) -> bool:
    """Whether ``home`` was built by the demo (and so may be wiped and rebuilt)."""
    return (home / DEMO_FOLDER / MANIFEST_NAME).is_file()


def _holds_a_node(home: Path) -> bool:
    return (home / "keys" / "node.key").exists()


def _prepare_home(home: Path, fresh: bool) -> None:
    """Refuse a home the demo did not build; wipe a demo home when asked."""
    if not home.exists() or not any(home.iterdir()):
        return
    if not is_demo_home(home):
        raise Conflict(
            f"{home} is not empty and was not built by the demo; the demo will not "
            "touch it" + (", let alone wipe it" if fresh else ""),
            hint="choose an empty or new directory with --home, e.g. --home .demo-exchange",
        )
    if fresh:
        shutil.rmtree(home)


def _generate(demo: Demo) -> dict[str, Any]:
    demo.manifest = generate(demo.files, seed=demo.seed, scale=demo.scale)
    return {
        "directory": str(demo.files),
        "seed": demo.seed,
        "scale": demo.scale,
        "people": demo.manifest.people,
        "files": [
            {
                "provider": f.provider,
                "file": f.path,
                "standard": f.standard,
                "encoding": f.encoding,
                "rows": f.rows,
                "defects": f.rows_defective,
            }
            for f in demo.manifest.files
        ],
    }


def _node(demo: Demo) -> dict[str, Any]:
    # The generate step already created <home>/demo: the node's home is then not empty.
    reused = _holds_a_node(demo.home)
    demo.node = Node.open(demo.settings) if reused else Node.init(demo.settings)
    return {
        "home": str(demo.home.resolve()),
        "reused": reused,
        "node_key": bytes(demo.node.verify_key).hex(),
    }


def _providers(demo: Demo) -> dict[str, Any]:
    node = demo.opened()
    known = {p.slug for p in list_providers(node.db)}
    added, kept = [], []
    for f in demo.demo_manifest().files:
        if f.provider in known:
            kept.append(f.provider)
            continue
        add_provider(node.db, f.provider, f.provider_name)
        known.add(f.provider)
        added.append({"slug": f.provider, "name": f.provider_name})
    return {"added": added, "existing": sorted(set(kept))}


def _publish_one(demo: Demo, vault: LocalVault, f: DemoFile) -> dict[str, Any]:
    mapping_path = demo.files / f.mapping
    request = PublishRequest(
        provider=f.provider,
        standard=standards.get(f.standard),
        title=f.title,
        dataset=f.dataset,
        description=f.description,
        mapping=standards.load_mapping(mapping_path),
        mapping_text=mapping_path.read_text(encoding="utf-8"),
        on_error=OnError.QUARANTINE,
        filename=f.path,
    )

    def progress(step: str, done: int, total: int) -> None:
        demo.reporter.progress(f"{f.provider}/{f.dataset}: {step}", done, total)

    with (demo.files / f.path).open("rb") as handle:
        published = vault.publish(request, handle, progress=progress)
    version = published.version
    violations = published.report.get("violations", [])
    found = {f"{v['rule']}:{v['column']}": v["count"] for v in violations}
    return {
        "dataset": str(version.ref),
        "file": f.path,
        "standard": f.standard,
        "version": version.number,
        "rows_read": published.rows_total,
        "rows_published": version.rows,
        "rows_quarantined": published.quarantined,
        "sha256": version.sha256,
        "violations": violations,
        "defects_injected": f.rows_defective,
        "all_defects_caught": found == f.defects,
    }


def _publish(demo: Demo) -> dict[str, Any]:
    vault = LocalVault.of(demo.opened())
    return {"datasets": [_publish_one(demo, vault, f) for f in demo.demo_manifest().files]}


def _catalog(demo: Demo) -> dict[str, Any]:
    catalog = Catalog(demo.opened().db)
    return {
        "search": SEARCH,
        "hits": [hit.to_dict() for hit in catalog.search(SEARCH)],
        "datasets": [entry.to_dict() for entry in catalog.datasets()],
    }


def _next(demo: Demo) -> dict[str, Any]:
    manifest = demo.demo_manifest()
    home = str(demo.home)
    first = manifest.files[0]
    return {
        "commands": [
            f"entrepot catalog list --home {home}",
            f'entrepot catalog search "mobility phone" --home {home}',
            f"entrepot catalog show {first.provider}/{first.dataset} --home {home}",
            f"entrepot dataset versions {first.provider}/{first.dataset} --home {home}",
            f"entrepot dataset validate {demo.files / first.path} --standard {first.standard} "
            f"--mapping {demo.files / first.mapping}",
            f"entrepot catalog export --format dcat --home {home} > catalog.jsonld",
            f"entrepot serve --home {home}",
        ]
    }


# The scenario, in order. Later capabilities add their steps here.
STEPS: tuple[Step, ...] = (
    Step("generate", "Generate the providers' raw files", _generate),
    Step("node", "Open the exchange node", _node),
    Step("providers", "Register the providers", _providers),
    Step("publish", "Publish every file, quarantining invalid rows", _publish),
    Step("catalog", "Search the catalog", _catalog),
    Step("next", "What to try next", _next),
)


def run(
    home: Path,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    fresh: bool = False,
    reporter: Reporter | None = None,
    steps: tuple[Step, ...] = STEPS,
    settings: Settings | None = None,
) -> DemoResult:
    """Build (or extend) the demo exchange at ``home`` and return what each step did.

    ``fresh`` wipes ``home`` first, but only when it is empty or a demo home; a home
    holding anything else is refused (Conflict) whatever ``fresh`` says. Reusing a
    demo home publishes a new version of each dataset.
    """
    chosen = (settings or Settings()).model_copy(update={"home": home})
    _prepare_home(home, fresh)
    demo = Demo(chosen, seed, scale, reporter or _Silent())
    result = DemoResult(home)
    try:
        for step in steps:
            demo.reporter.begin(step)
            data = step.run(demo)
            result.steps.append((step, data))
            demo.reporter.end(step, data)
    finally:
        if demo.node is not None:
            demo.node.close()
    return result
