"""Over HTTP, a version's exact content figures reach its provider and operators only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.exchange.node import Node
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]
MINE = "riverside-hospitals/outpatient-visits"
THEIRS = "harbor-clinics/outpatient-visits"
FIGURES = ("rows", "rows_rejected", "size_bytes", "sha256", "quality")
NON_OWNERS = ("consumer", "other-consumer", "other-provider", "auditor")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, serve: Serve, make_world: Callable[[Node], World]
) -> Iterator[tuple[World, httpx.Client]]:
    root = tmp_path_factory.mktemp("catalog-figures")
    node = Node.init(Settings(home=root / "node", token_hash_memory_kib=1024))
    world = make_world(node)
    with serve(create_app(node)) as client:
        yield world, client
    node.close()


def _reads(api: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    """Every catalog and version read naming MINE, as the caller receives them."""
    listed = api.get("/v1/catalog/datasets", headers=headers).json()["items"]
    found = api.get("/v1/catalog/search", params={"q": "visits"}, headers=headers)
    return {
        "list": next(d for d in listed if d["dataset"] == MINE),
        "search": next(d for d in found.json()["items"] if d["dataset"] == MINE),
        "page": api.get(f"/v1/catalog/datasets/{MINE}", headers=headers).json(),
        "versions": api.get(f"/v1/datasets/{MINE}/versions", headers=headers).json()["items"],
        "dcat": api.get("/v1/catalog/dcat", headers=headers).json(),
    }


def _stored(world: World) -> bytes:
    return (world.node.home / "vaults" / f"{MINE}" / "1.parquet").read_bytes()


@pytest.mark.parametrize("who", NON_OWNERS)
def test_a_non_owner_reads_no_exact_figure_of_the_content(
    served: tuple[World, httpx.Client], who: str
) -> None:
    world, api = served
    read = _reads(api, world.auth(who))
    assert read["list"]["rows"] is None
    assert read["search"]["rows"] is None
    assert (read["page"]["rows"], read["page"]["quality"]) == (None, None)
    for version in (*read["page"]["versions"], *read["versions"]):
        # Present and null: one schema for every caller, never a zero.
        assert {key: version[key] for key in FIGURES} == dict.fromkeys(FIGURES)
        assert version["version"] == 1
    data = _stored(world)
    text = json.dumps(read)
    assert hashlib.sha256(data).hexdigest() not in text
    assert '"dcat:byteSize"' not in text
    assert '"spdx:checksum"' not in text


@pytest.mark.parametrize("who", ["provider", "operator"])
def test_the_provider_and_operators_read_the_exact_figures(
    served: tuple[World, httpx.Client], who: str
) -> None:
    world, api = served
    read = _reads(api, world.auth(who))
    data = _stored(world)
    assert read["list"]["rows"] == read["search"]["rows"] == read["page"]["rows"] == 300
    (version,) = read["versions"]
    assert version == read["page"]["versions"][0]
    assert (version["rows"], version["rows_rejected"]) == (300, 0)
    assert version["size_bytes"] == len(data)
    assert version["sha256"] == hashlib.sha256(data).hexdigest()
    assert read["page"]["quality"]["validation"]["rows_valid"] == 300
    # The DCAT export is for republishing: public metadata, whoever asks.
    assert '"dcat:byteSize"' not in json.dumps(read["dcat"])
    assert version["sha256"] not in json.dumps(read["dcat"])


def test_a_provider_sees_its_own_figures_and_not_another_providers(
    served: tuple[World, httpx.Client],
) -> None:
    world, api = served
    headers = world.auth("other-provider")
    own = api.get(f"/v1/datasets/{THEIRS}/versions", headers=headers).json()["items"]
    other = api.get(f"/v1/datasets/{MINE}/versions", headers=headers).json()["items"]
    assert [v["rows"] for v in own] == [300]
    assert [v["rows"] for v in other] == [None]


def test_the_openapi_schema_documents_the_figures_as_nullable(
    served: tuple[World, httpx.Client],
) -> None:
    _, api = served
    version = api.get("/openapi.json").json()["components"]["schemas"]["VersionOut"]
    for key in FIGURES:
        field = version["properties"][key]
        assert {"type": "null"} in field["anyOf"]
        assert "null unless the caller is the dataset's provider" in field["description"]


def test_two_versions_one_unit_apart_give_a_consumer_the_same_page(
    served: tuple[World, httpx.Client], tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    world, api = served
    source = make_visits(tmp_path / "all.csv", 120, seed=11)
    lines = source.read_text().splitlines()
    unit = lines[1].split(",")[1]
    fewer = tmp_path / "fewer.csv"
    fewer.write_text("\n".join(line for line in lines if f",{unit}," not in line) + "\n")
    pages = []
    for path in (source, fewer):
        published = api.post(
            "/v1/datasets",
            data={"standard": "health.visit", "title": "Neighbours", "dataset": "neighbours"},
            files={"file": (path.name, path.read_bytes(), "text/csv")},
            headers=world.auth("provider"),
        )
        assert published.status_code == 201, published.text
        ref = "riverside-hospitals/neighbours"
        pages.append(api.get(f"/v1/catalog/datasets/{ref}", headers=world.auth("consumer")).json())
    owned = api.get(
        "/v1/datasets/riverside-hospitals/neighbours/versions", headers=world.auth("provider")
    ).json()["items"]
    before, after = (v["rows"] for v in owned)
    assert before > after
    first, second = pages
    assert [v["version"] for v in second["versions"]] == [1, 2]
    moving = ("created_at", "updated_at", "latest_version", "versions")
    assert {k: v for k, v in first.items() if k not in moving} == {
        k: v for k, v in second.items() if k not in moving
    }
    # the rows-per-unit bound and its level are fresh private releases at each publish
    drawn = (*moving, "version", "unit_bound", "unit_level")
    newest = [{k: v for k, v in p["versions"][-1].items() if k not in drawn} for p in pages]
    assert newest[0] == newest[1]
