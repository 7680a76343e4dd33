"""The catalog's filters read the same way at both doors: a filter value the API's
catalog routes refuse is refused by the portal's catalog page too, as a page."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.api.conftest import World, build_world, running
from tests.portal.pages import Signed

from entrepot.api import create_app
from entrepot.exchange.node import Node
from entrepot.settings import Settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, World]]:
    home = tmp_path_factory.mktemp("catalog-filters") / "node"
    node = Node.init(Settings(home=home, token_hash_memory_kib=1024))
    world = build_world(node)
    with running(create_app(node)) as client:
        yield client, world
    node.close()


@pytest.mark.parametrize(
    ("facet", "value"),
    [("region", "91/../00"), ("provider", "Riverside Hospitals"), ("sector", "Q" * 17)],
)
def test_a_filter_value_the_api_refuses_is_refused_by_the_portal_too(
    served: tuple[httpx.Client, World], facet: str, value: str
) -> None:
    client, world = served
    field = f"query.{facet}.0"
    api = client.get("/v1/catalog/datasets", params={facet: value}, headers=world.auth("consumer"))
    assert api.status_code == 400, api.text
    assert api.json()["error"]["fields"] == [field]
    consumer = Signed(str(client.base_url), world.tokens["consumer"])
    try:
        page = consumer.http.get("/", params={facet: value})
        searched = consumer.http.get("/", params={"q": "visits", facet: value})
    finally:
        consumer.http.close()
    for answer in (page, searched):
        assert answer.status_code == 400, answer.text[:500]
        assert answer.headers["content-type"].startswith("text/html")
        assert field in answer.text


def test_a_filter_value_the_api_takes_the_portal_takes(
    served: tuple[httpx.Client, World],
) -> None:
    client, world = served
    kept = {"provider": "riverside-hospitals"}
    api = client.get("/v1/catalog/datasets", params=kept, headers=world.auth("consumer"))
    assert api.status_code == 200, api.text
    assert [d["dataset"] for d in api.json()["items"]] == ["riverside-hospitals/outpatient-visits"]
    consumer = Signed(str(client.base_url), world.tokens["consumer"])
    try:
        page = consumer.http.get("/", params=kept)
    finally:
        consumer.http.close()
    assert page.status_code == 200, page.text[:500]
    assert page.text.count('<li class="card">') == 1
