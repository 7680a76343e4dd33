from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from tests.vault.visits import write_visits_csv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.dcat import CONTEXT, PARQUET_MEDIA_TYPE, export_dcat
from entrepot.exchange.node import Node
from entrepot.standards import get
from entrepot.vault import LocalVault, PublishRequest, add_provider

BASE = "https://exchange.example/"


@pytest.fixture
def document(node: Node, tmp_path: Path) -> dict[str, Any]:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    vault = LocalVault.of(node)
    for number, title in enumerate(("Outpatient visits 2025", "Outpatient visits 2026")):
        source = write_visits_csv(tmp_path / f"{number}.csv", 30 + number, seed=number)
        request = PublishRequest(
            provider="riverside-hospitals",
            standard=get("health.visit"),
            title=title,
            description="Visits by district",
            filename=source.name,
        )
        with source.open("rb") as data:
            vault.publish(request, data)
    exported = export_dcat(Exchange(node).catalog(), base_url=BASE.rstrip("/"))
    # What a harvester receives: JSON text, parsed again.
    return json.loads(json.dumps(exported))


def terms(node: Any) -> set[str]:
    """Every compact IRI used as a key or a type anywhere in the document."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "@context":
                found.add(key)
                if key == "@type":
                    found.add(value)
                found |= terms(value)
    elif isinstance(node, list):
        for item in node:
            found |= terms(item)
    return found


def test_every_term_uses_a_prefix_declared_inline(document: dict[str, Any]) -> None:
    assert isinstance(document["@context"], dict)  # nothing to fetch from the network
    for term in terms(document) - {"@id", "@type", "@value"}:
        prefix, colon, _ = term.partition(":")
        assert colon, term
        assert prefix in CONTEXT, term
    assert CONTEXT["dcat"] == "http://www.w3.org/ns/dcat#"
    assert CONTEXT["dct"] == "http://purl.org/dc/terms/"


def test_catalog_datasets_and_distributions(document: dict[str, Any], node: Node) -> None:
    assert document["@type"] == "dcat:Catalog"
    (dataset,) = document["dcat:dataset"]
    assert dataset["@type"] == "dcat:Dataset"
    assert dataset["@id"] == f"{BASE}datasets/riverside-hospitals/outpatient-visits"
    assert dataset["dct:title"] == "Outpatient visits"
    assert dataset["dct:publisher"]["@type"] == "foaf:Agent"
    assert dataset["dct:publisher"]["foaf:name"] == "Riverside Hospitals"
    assert dataset["dct:conformsTo"]["@id"] == f"{BASE}standards/health.visit"
    assert dataset["dct:issued"]["@type"] == "xsd:dateTime"
    assert dataset["dct:modified"]["@value"] >= dataset["dct:issued"]["@value"]
    distributions = dataset["dcat:distribution"]
    assert [d["dcat:version"] for d in distributions] == ["1", "2"]
    for distribution in distributions:
        assert distribution["@type"] == "dcat:Distribution"
        assert distribution["dct:format"] == PARQUET_MEDIA_TYPE
        assert distribution["dct:conformsTo"] == {"@id": f"{BASE}standards/health.visit"}
        assert distribution["dcat:accessURL"]["@id"] == dataset["@id"]


def test_no_figure_of_the_content_is_exported_whoever_asks(
    document: dict[str, Any], node: Node
) -> None:
    path = node.home / "vaults" / "riverside-hospitals" / "outpatient-visits"
    files = [(path / f"{number}.parquet").read_bytes() for number in (1, 2)]
    text = json.dumps(document)
    for data in files:
        assert hashlib.sha256(data).hexdigest() not in text
        assert f'"{len(data)}"' not in text
    for row_count in ('"30"', '"31"'):
        assert row_count not in text
    assert not {"dcat:byteSize", "spdx:checksum", "entrepot:rows"} & terms(document)
    # The holder of the node's home exports the same document as anyone.
    assert export_dcat(Exchange(node).catalog(LOCAL), base_url=BASE) == document


def test_an_empty_catalog_exports_an_empty_list(node: Node) -> None:
    exported = export_dcat(Exchange(node).catalog(), base_url=BASE)
    assert exported["dcat:dataset"] == []
    assert exported["@id"] == f"{BASE}catalog"
