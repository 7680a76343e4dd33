from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from tests.vault.visits import write_visits_csv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.dcat import (
    ANSWER_MEDIA_TYPE,
    CONTEXT,
    DEFAULT_LICENSE,
    RESTRICTED,
    export_dcat,
)
from entrepot.exchange.node import Node
from entrepot.standards import get
from entrepot.vault import LocalVault, PublishRequest, add_provider

BASE = "https://exchange.example/"
SHAPES = Path(__file__).parents[1] / "fixtures" / "dcat-ap" / "shacl_dcat-ap-SHACL.ttl"


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
            # Declared at the first publish; the second, giving none, keeps them.
            regions=("910000", "920100") if number == 0 else (),
            sector="Q" if number == 0 else None,
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


def conforms(document: dict[str, Any]) -> tuple[bool, str]:
    """Whether ``document`` passes the DCAT-AP 3.0.0 shapes, and pyshacl's report."""
    from pyshacl import validate
    from rdflib import Graph

    with warnings.catch_warnings():
        # rdflib's own JSON-LD parser builds a ConjunctiveGraph it deprecates itself.
        warnings.simplefilter("ignore", DeprecationWarning)
        data = Graph().parse(data=json.dumps(document), format="json-ld")
        shapes = Graph().parse(SHAPES, format="turtle")
        ok, _graph, report = validate(data, shacl_graph=shapes)
    return bool(ok), str(report)


def test_the_export_conforms_to_the_dcat_ap_3_shapes(document: dict[str, Any]) -> None:
    ok, report = conforms(document)
    assert ok, report


def test_the_shapes_catch_a_dataset_without_a_title(document: dict[str, Any]) -> None:
    del document["dcat:dataset"][0]["dct:title"]
    ok, report = conforms(document)
    assert not ok
    assert "MinCountConstraintComponent" in report
    assert "outpatient-visits>->dc1:title" in report


def test_regions_are_locations_and_the_sector_a_theme_of_the_catalog_s_taxonomy(
    document: dict[str, Any],
) -> None:
    (dataset,) = document["dcat:dataset"]
    codelists = f"{BASE}v1/standards/codelists/"
    assert dataset["dct:spatial"] == [
        {
            "@id": f"{codelists}region.province#910000",
            "@type": "dct:Location",
            "skos:prefLabel": "Lanshan Province",
            "skos:notation": "910000",
        },
        {
            "@id": f"{codelists}region.city#920100",
            "@type": "dct:Location",
            "skos:prefLabel": "Heqiao City",
            "skos:notation": "920100",
        },
    ]
    (theme,) = dataset["dcat:theme"]
    assert theme["@id"] == f"{codelists}sector#Q"
    assert (theme["@type"], theme["skos:prefLabel"]) == ("skos:Concept", "Health and social work")
    assert theme["skos:inScheme"] == {"@id": document["dcat:themeTaxonomy"]["@id"]}
    assert document["dcat:themeTaxonomy"]["@type"] == "skos:ConceptScheme"


def test_the_shapes_catch_a_theme_without_a_label(document: dict[str, Any]) -> None:
    del document["dcat:dataset"][0]["dcat:theme"][0]["skos:prefLabel"]
    ok, report = conforms(document)
    assert not ok
    assert "prefLabel" in report


def test_an_empty_catalog_conforms_too(node: Node) -> None:
    ok, report = conforms(export_dcat(Exchange(node).catalog(), base_url=BASE))
    assert ok, report


def test_every_term_uses_a_prefix_declared_inline(document: dict[str, Any]) -> None:
    assert isinstance(document["@context"], dict)  # nothing to fetch from the network
    for term in terms(document) - {"@id", "@type", "@value"}:
        prefix, colon, _ = term.partition(":")
        assert colon, term
        assert prefix in CONTEXT, term
    assert CONTEXT["dcat"] == "http://www.w3.org/ns/dcat#"
    assert CONTEXT["dct"] == "http://purl.org/dc/terms/"


def test_ids_are_routes_of_the_api(document: dict[str, Any]) -> None:
    assert document["@id"] == f"{BASE}v1/catalog/dcat"
    (dataset,) = document["dcat:dataset"]
    assert dataset["@id"] == f"{BASE}v1/catalog/datasets/riverside-hospitals/outpatient-visits"
    assert dataset["dct:publisher"]["@id"] == f"{BASE}v1/providers#riverside-hospitals"
    assert dataset["dct:conformsTo"]["@id"] == f"{BASE}v1/standards/health.visit"
    (service,) = document["dcat:service"]
    assert service["@id"] == f"{BASE}docs"
    assert service["dcat:endpointURL"]["@id"] == f"{BASE}v1/queries"
    assert service["dcat:servesDataset"] == [{"@id": dataset["@id"]}]


def test_access_is_a_query_service_not_a_download(document: dict[str, Any]) -> None:
    (dataset,) = document["dcat:dataset"]
    assert dataset["dct:title"] == "Outpatient visits"
    assert dataset["dct:publisher"]["foaf:name"] == "Riverside Hospitals"
    assert dataset["dct:accessRights"]["@id"] == RESTRICTED
    assert dataset["dcat:version"] == "2"
    assert dataset["dct:modified"]["@value"] >= dataset["dct:issued"]["@value"]
    (distribution,) = dataset["dcat:distribution"]
    (service,) = document["dcat:service"]
    assert distribution["dcat:accessService"] == {"@id": service["@id"]}
    assert distribution["dcat:accessURL"] == service["dcat:endpointURL"]
    assert distribution["dcat:mediaType"]["@id"].endswith(ANSWER_MEDIA_TYPE)
    assert distribution["dct:license"]["@id"] == DEFAULT_LICENSE
    assert not {"dcat:downloadURL", "dcat:byteSize", "dct:format"} & terms(document)
    assert "parquet" not in json.dumps(document).lower()


def test_the_licence_is_the_nodes(node: Node) -> None:
    licence = "https://data.example/licence"
    exported = export_dcat(Exchange(node).catalog(), base_url=BASE, license=licence)
    assert exported["dct:license"]["@id"] == licence


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
    assert exported["@id"] == f"{BASE}v1/catalog/dcat"
