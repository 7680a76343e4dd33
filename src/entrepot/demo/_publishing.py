"""Steps of the demo that build the exchange: files, node, providers, publishing, catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from entrepot import standards
from entrepot.demo._state import Demo
from entrepot.demo.generate import generate
from entrepot.demo.manifest import DemoFile
from entrepot.exchange.catalog import publish_version
from entrepot.exchange.node import Node
from entrepot.vault import OnError, PublishRequest, add_provider, list_providers

# What the catalog step searches for: words a consumer looking for health data would use.
SEARCH = "visits district"


def holds_a_node(home: Path) -> bool:
    return (home / "keys" / "node.key").exists()


def generate_files(demo: Demo) -> dict[str, Any]:
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
        # The generator's answer key: how many people two providers share. Only a
        # private join on blinded identifiers may find them; the exchange never looks.
        "shared_people": [
            {"files": pair.split("|"), "people": count}
            for pair, count in demo.manifest.overlaps.items()
        ],
    }


def open_node(demo: Demo) -> dict[str, Any]:
    # The generate step already created <home>/demo: the node's home is then not empty.
    reused = holds_a_node(demo.home)
    demo.node = Node.open(demo.settings) if reused else Node.init(demo.settings)
    return {
        "home": str(demo.home.resolve()),
        "reused": reused,
        "node_key": bytes(demo.node.verify_key).hex(),
    }


def register_providers(demo: Demo) -> dict[str, Any]:
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


def _publish_one(demo: Demo, node: Node, f: DemoFile) -> dict[str, Any]:
    mapping_path = demo.files / f.mapping
    request = PublishRequest(
        provider=f.provider,
        standard=standards.get(f.standard),
        title=f.title,
        dataset=f.dataset,
        description=f.description,
        regions=tuple(f.regions),
        sector=f.sector,
        mapping=standards.load_mapping(mapping_path),
        mapping_text=mapping_path.read_text(encoding="utf-8"),
        on_error=OnError.QUARANTINE,
        filename=f.path,
    )

    def progress(step: str, done: int, total: int) -> None:
        demo.reporter.progress(f"{f.provider}/{f.dataset}: {step}", done, total)

    with (demo.files / f.path).open("rb") as handle:
        published = publish_version(node, request, handle, progress=progress)
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


def publish_files(demo: Demo) -> dict[str, Any]:
    node = demo.opened()
    return {"datasets": [_publish_one(demo, node, f) for f in demo.demo_manifest().files]}


def search_catalog(demo: Demo) -> dict[str, Any]:
    # What any consumer sees: public metadata, no content figures.
    catalog = demo.exchange().catalog()
    return {
        "search": SEARCH,
        "hits": [hit.to_dict() for hit in catalog.search(SEARCH)],
        "datasets": [entry.to_dict() for entry in catalog.datasets()],
    }
