"""Odd input to releases and Delta Sharing, sent to a live server: every refusal is a 4xx
in its route's shape, names what is wrong, and makes, reads or charges nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, released, served_node

from entrepot.api import create_app
from entrepot.client.local import LocalClient
from entrepot.errors import InvalidInput
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node

SHARE = "/delta-sharing/shares/riverside-hospitals"
SCHEMA = f"{SHARE}/schemas/outpatient-visits"
TABLE = f"{SCHEMA}/tables/anonymized-1"
PROTOCOL_SHAPE = {"errorCode", "message"}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with served_node(tmp_path / "node") as opened:
        yield opened


@pytest.fixture
def world(node: Node, tmp_path: Path) -> Exchange:
    return released(node, tmp_path)


@pytest.fixture
def api(node: Node, world: Exchange) -> Iterator[httpx.Client]:
    with running(create_app(node)) as client:
        yield client


def _bearer(ex: Exchange, org: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ex.accounts.issue_token(LOCAL, org).secret}"}


def _provider(ex: Exchange) -> dict[str, str]:
    _, made = ex.accounts.create(LOCAL, "riverside-admin", "provider", org=PROVIDER)
    return {"Authorization": f"Bearer {made.secret}"}


def _reads(node: Node) -> int:
    return len(list(node.log.search(kind="download", limit=1000)))


def _refused(answer: httpx.Response, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == PROTOCOL_SHAPE, body
    for word in words:
        assert word in body["message"], body


def test_refusals_before_a_sharing_route_runs_have_the_protocol_shape(
    api: httpx.Client, world: Exchange
) -> None:
    anonymous = api.get("/delta-sharing/shares")
    _refused(anonymous, 401, "token")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    _refused(api.get("/delta-sharing/shares", headers={"Authorization": "Bearer x"}), 401)
    _refused(api.get("/delta-sharing/shares", headers=_provider(world)), 403)
    consumer = _bearer(world, CONSUMER)
    _refused(api.get("/delta-sharing/shares?maxResults=-1", headers=consumer), 400, "maxResults")
    _refused(api.post(f"{TABLE}/query", headers=consumer, content=b"{"), 400, "body")


@pytest.mark.parametrize(
    "path",
    [
        f"{SCHEMA}/tables/anonymized-\u00b2/metadata",
        f"{SCHEMA}/tables/anonymized-{'9' * 5000}/metadata",
        f"{SCHEMA}/tables/anonymized-{'9' * 30}/version",
    ],
)
def test_a_table_name_that_is_no_release_number_is_a_404(
    api: httpx.Client, world: Exchange, path: str
) -> None:
    _refused(api.get(path, headers=_bearer(world, CONSUMER)), 404, "no table")


@pytest.mark.parametrize("token", ["\u00b2", "\u0663", "-1", "abc"])
def test_a_page_token_this_server_did_not_write_is_a_400(
    api: httpx.Client, world: Exchange, token: str
) -> None:
    headers = _bearer(world, CONSUMER)
    for path in ("/delta-sharing/shares", f"{SCHEMA}/tables", f"{SHARE}/all-tables"):
        answer = api.get(path, params={"pageToken": token}, headers=headers)
        _refused(answer, 400, "pageToken")


def test_any_int32_max_results_is_a_page_and_a_larger_one_a_400(
    api: httpx.Client, world: Exchange
) -> None:
    headers = _bearer(world, CONSUMER)
    largest = api.get(f"{SHARE}/all-tables", params={"maxResults": 2**31 - 1}, headers=headers)
    assert largest.status_code == 200, largest.text
    assert [t["name"] for t in largest.json()["items"]] == ["anonymized-1"]
    empty = api.get("/delta-sharing/shares", params={"maxResults": 0}, headers=headers)
    assert empty.json() == {"items": []}
    _refused(api.get("/delta-sharing/shares?maxResults=2147483648", headers=headers), 400)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"version": 5}, ("no version 5",)),
        ({"timestamp": "2020-01-01T00:00:00Z"}, ("history",)),
        ({"startingVersion": 0}, ("change data feed",)),
        ({"startingVersion": 99, "endingVersion": 100}, ("change data feed",)),
        ({"limitHint": -1}, ("limitHint",)),
        ({"predicateHints": "district = '1'"}, ("predicateHints",)),
        ([], ("body",)),
    ],
)
def test_a_query_the_release_cannot_answer_is_refused_and_not_metered(
    api: httpx.Client, world: Exchange, node: Node, body: object, words: tuple[str, ...]
) -> None:
    headers = _bearer(world, CONSUMER)
    before = _reads(node)
    _refused(api.post(f"{TABLE}/query", headers=headers, json=body), 400, *words)
    assert _reads(node) == before


def test_a_query_at_the_one_version_with_hints_is_read_and_metered_once(
    api: httpx.Client, world: Exchange, node: Node
) -> None:
    headers = _bearer(world, CONSUMER)
    before = _reads(node)
    body = {"version": 0, "predicateHints": ["sex = 1"], "jsonPredicateHints": "{", "limitHint": 5}
    answered = api.post(f"{TABLE}/query", headers=headers, json=body)
    assert answered.status_code == 200, answered.text
    assert answered.headers["delta-table-version"] == "0"
    assert _reads(node) == before + 1


def test_metadata_at_another_version_or_a_timestamp_is_refused(
    api: httpx.Client, world: Exchange
) -> None:
    headers = _bearer(world, CONSUMER)
    _refused(api.get(f"{TABLE}/metadata?version=3", headers=headers), 400, "no version 3")
    _refused(api.get(f"{TABLE}/metadata?timestamp=2020-01-01", headers=headers), 400, "history")
    assert api.get(f"{TABLE}/metadata?version=0", headers=headers).status_code == 200


def test_changes_of_a_release_are_refused_and_of_another_table_are_a_404(
    api: httpx.Client, world: Exchange
) -> None:
    headers = _bearer(world, CONSUMER)
    changes = f"{TABLE}/changes?startingVersion=0"
    _refused(api.get(changes, headers=headers), 400, "change data feed")
    _refused(api.get(changes.replace("-1/", "-2/"), headers=headers), 404, "no such table")


def test_a_range_of_too_many_digits_is_not_satisfiable(api: httpx.Client, world: Exchange) -> None:
    answered = api.post(f"{TABLE}/query", headers=_bearer(world, CONSUMER), json={})
    line = next(li for li in answered.text.splitlines() if li.startswith('{"file"'))
    url = httpx.Response(200, content=line).json()["file"]["url"]
    for wanted in (f"bytes={'9' * 5000}-", f"bytes=-{'9' * 5000}", f"bytes=0-{'9' * 5000}"):
        assert api.get(url, headers={"Range": wanted}).status_code == 416


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "synthetic", "epsilon": 1.0, "rows": 50, "k": 50}, ("k is for anonymized",)),
        ({"kind": "synthetic", "epsilon": 1.0, "sensitive": "x"}, ("sensitive is for",)),
        ({"kind": "anonymized", "epsilon": 3.0, "rows": 7}, ("epsilon, rows are for synthetic",)),
        ({"kind": "synthetic", "epsilon": 1e-300, "rows": 5}, ("finite ε",)),
        ({"kind": "anonymized", "sensitive": ""}, ("sensitive must name a column",)),
    ],
)
def test_a_release_spec_with_fields_it_cannot_hold_is_refused_and_nothing_is_made(
    api: httpx.Client, world: Exchange, node: Node, spec: dict[str, object], words: tuple[str, ...]
) -> None:
    headers = _provider(world)
    spent = world.ledger.entries(consumer_id=world.actor(CONSUMER).org_id)
    body = {"dataset": DATASET, "consumer": CONSUMER, **spec}
    for route in ("/v1/releases/plan", "/v1/releases"):
        refused = api.post(route, headers=headers, json=body)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_input"
        for word in words:
            assert word in error["message"]
    listed = api.get("/v1/releases", headers=headers).json()["items"]
    assert [r["release"] for r in listed] == ["R-1"]
    assert world.ledger.entries(consumer_id=world.actor(CONSUMER).org_id) == spent


@pytest.mark.parametrize(
    "spec",
    [
        {"t": float("nan")},
        {"t": -0.5},
        {"max_suppression": float("nan")},
        {"max_suppression": float("-inf")},
    ],
)
def test_the_python_client_refuses_a_share_outside_0_to_1_before_any_data_is_read(
    world: Exchange, node: Node, spec: dict[str, float]
) -> None:
    client = LocalClient(world, world.actor(PROVIDER))
    for call in (client.release_plan, client.release_create):
        with pytest.raises(InvalidInput, match="must be a number from 0 to 1"):
            call(DATASET, CONSUMER, kind="anonymized", **spec)
    assert [r["release"] for r in client.releases()] == ["R-1"]
