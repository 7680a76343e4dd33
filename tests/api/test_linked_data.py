"""The catalog's DCAT and a grant's ODRL, as a harvester follows them on a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import httpx
from tests.api.conftest import World, build_world

from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.settings import Settings


def ids(node: Any) -> set[str]:
    """Every ``@id`` in a JSON-LD document, the context aside."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "@id":
                found.add(value)
            elif key != "@context":
                found |= ids(value)
    elif isinstance(node, list):
        for item in node:
            found |= ids(item)
    return found


def test_every_iri_of_the_dcat_catalog_is_a_route_the_server_answers(
    api: httpx.Client, world: World
) -> None:
    auth = world.auth("consumer")
    document = api.get("/v1/catalog/dcat", headers=auth).json()
    base = str(api.base_url)
    ours = {iri for iri in ids(document) if iri.startswith(base)}
    assert len(document["dcat:dataset"]) == 2
    (service,) = document["dcat:service"]
    endpoint = service["dcat:endpointURL"]["@id"]
    for iri in sorted(ours - {endpoint}):
        assert api.get(urldefrag(iri).url, headers=auth).status_code == 200, iri
    # The query endpoint takes a POST: an empty one is refused for its body, not missed.
    refused = api.post(endpoint, headers=auth, json={})
    assert refused.json()["error"]["code"] == "invalid_input"
    foreign = ids(document) - ours
    assert all(iri.startswith("http://") for iri in foreign), foreign


def test_odrl_targets_and_assigners_are_the_dcat_ids(api: httpx.Client, world: World) -> None:
    auth = world.auth("consumer")
    document = api.get("/v1/catalog/dcat", headers=auth).json()
    publishers = {d["@id"]: d["dct:publisher"]["@id"] for d in document["dcat:dataset"]}
    agreement = api.get("/v1/access/grants/GRANT-1/odrl", headers=auth).json()
    (permission,) = agreement["permission"]
    assert permission["target"] == agreement["target"]
    assert publishers[agreement["target"]] == agreement["assigner"]["uid"]
    assert api.get(agreement["uid"], headers=auth).json() == agreement


def test_a_published_url_names_every_iri(api: httpx.Client, world: World) -> None:
    auth = world.auth("consumer")
    params = {"base_url": "https://exchange.example"}
    document = api.get("/v1/catalog/dcat", headers=auth, params=params).json()
    agreement = api.get("/v1/access/grants/GRANT-1/odrl", headers=auth, params=params).json()
    assert {agreement["target"]} <= {d["@id"] for d in document["dcat:dataset"]}
    assert all(i.startswith("https://exchange.example/") for i in ids(document) if "//ex" in i)


def test_the_public_url_setting_names_the_ids_of_both_documents(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "node", token_hash_memory_kib=1024, public_url="https://x.example/"
    )
    node = Node.init(settings)
    try:
        build_world(node)
        exchange = Exchange(node)
        client = LocalClient(exchange, exchange.accounts.actor("city-health-bureau"))
        document = client.catalog_dcat()
        agreement = client.grant_odrl("GRANT-1")
    finally:
        node.close()
    assert document["@id"] == "https://x.example/v1/catalog/dcat"
    assert agreement["target"] in {d["@id"] for d in document["dcat:dataset"]}
    assert agreement["uid"] == "https://x.example/v1/access/grants/GRANT-1/odrl"
