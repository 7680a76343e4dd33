"""Region and sector over HTTP and through the Python client: declared at publish,
shown in the catalog, and a filter of both catalog lists."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from entrepot.client import HttpClient
from entrepot.client.local import LocalClient
from entrepot.errors import InvalidInput
from entrepot.exchange import Exchange

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.api.conftest import World

OWN = "riverside-hospitals/outpatient-visits"
OTHER = "harbor-clinics/outpatient-visits"


def publish(
    api: httpx.Client, world: World, who: str, data: bytes, **form: str | list[str]
) -> httpx.Response:
    fields = {"standard": "health.visit", "title": "Outpatient visits 2026", **form}
    return api.post(
        "/v1/datasets",
        data={**fields, "dataset": "outpatient-visits"},
        files={"file": ("visits.csv", data, "text/csv")},
        headers=world.auth(who),
    )


@pytest.fixture
def scoped(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> World:
    """The provider's dataset declared for two places in health; the other provider's for
    Qinghe province, with no sector."""
    data = make_visits(tmp_path / "v.csv", 50, seed=3).read_bytes()
    first = publish(api, world, "provider", data, region=["910000", "920100"], sector="Q")
    assert first.status_code == 201, first.text
    other = publish(api, world, "other-provider", data, region="920000")
    assert other.status_code == 201, other.text
    return world


def refs(api: httpx.Client, world: World, path: str, **params: str | list[str]) -> list[str]:
    answer = api.get(path, params=params, headers=world.auth("consumer"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == len(body["items"])
    return sorted(item["dataset"] for item in body["items"])


def test_the_scope_declared_at_publish_is_on_the_dataset_s_page(
    scoped: World, api: httpx.Client
) -> None:
    page = api.get(f"/v1/catalog/datasets/{OWN}", headers=scoped.auth("auditor")).json()
    assert page["regions"] == [
        {"code": "910000", "label": "Lanshan Province", "codelist": "region.province"},
        {"code": "920100", "label": "Heqiao City", "codelist": "region.city"},
    ]
    assert page["sector"] == {"code": "Q", "label": "Health and social work", "codelist": "sector"}


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ({}, [OTHER, OWN]),
        ({"region": "910000"}, [OWN]),
        ({"region": "920000"}, [OTHER]),
        ({"region": ["920000", "920100"]}, [OTHER, OWN]),
        ({"region": "930000"}, []),
        ({"sector": "Q"}, [OWN]),
        ({"sector": ["K", "H"]}, []),
        ({"region": "920000", "sector": "Q"}, []),
        ({"region": ["920000", "920100"], "sector": "Q"}, [OWN]),
        ({"provider": "harbor-clinics", "region": ["910000", "920000"]}, [OTHER]),
        ({"standard": "payments.transaction"}, []),
    ],
)
def test_both_catalog_lists_keep_exactly_the_datasets_the_facets_match(
    scoped: World, api: httpx.Client, params: dict[str, str | list[str]], kept: list[str]
) -> None:
    assert refs(api, scoped, "/v1/catalog/datasets", **params) == kept
    assert refs(api, scoped, "/v1/catalog/search", q="visits", **params) == kept


def test_a_malformed_code_is_refused_and_an_unknown_one_refuses_the_publish(
    scoped: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    bad = api.get(
        "/v1/catalog/search",
        params={"q": "visits", "region": "../x"},
        headers=scoped.auth("consumer"),
    )
    assert bad.status_code == 400
    assert "region" in bad.json()["error"]["message"]
    data = make_visits(tmp_path / "w.csv", 40, seed=4).read_bytes()
    refused = publish(api, scoped, "provider", data, region="999999")
    assert refused.status_code == 400
    assert "region '999999'" in refused.json()["error"]["message"]
    refused = publish(api, scoped, "provider", data, sector="Z")
    assert refused.status_code == 400
    versions = api.get(f"/v1/datasets/{OWN}/versions", headers=scoped.auth("provider")).json()[
        "items"
    ]
    assert len(versions) == 2


def test_the_python_client_publishes_and_filters_alike_over_http_and_in_process(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    source = make_visits(tmp_path / "visits.csv", 50, seed=5)
    url = str(api.base_url)
    with HttpClient(url, world.tokens["provider"]) as provider:
        published = provider.publish(
            source,
            standard="health.visit",
            title="Outpatient visits 2026",
            dataset="outpatient-visits",
            region=["910000"],
            sector="Q",
        )
    assert published["version"] == 2
    local = LocalClient(Exchange(world.node), Exchange(world.node).accounts.actor("public-auditor"))
    with HttpClient(url, world.tokens["consumer"]) as remote:
        for client in (remote, local):
            assert [d["dataset"] for d in client.catalog_datasets(region=["910000"])] == [OWN]
            assert [d["dataset"] for d in client.catalog_search("visits", sector=["Q"])] == [OWN]
            assert client.catalog_search("visits", region=["930000"]) == []
            assert client.catalog_datasets("harbor-clinics", sector=["Q"]) == []
            assert client.catalog_show(OWN)["sector"]["code"] == "Q"
    with HttpClient(url, world.tokens["provider"]) as provider, pytest.raises(InvalidInput):
        provider.publish(source, standard="health.visit", title="Visits", region=["nowhere"])
