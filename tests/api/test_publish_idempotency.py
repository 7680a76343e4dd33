"""A publish over HTTP is one publish, however often its client sends it.

An ``Idempotency-Key`` names one publish request: a repeat answers what the first did
(also after the server restarted) and never adds a version, the same key with another
request is refused, and the HTTP client sends the request again under its key when
the first answer is lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from entrepot.api import create_app
from entrepot.client import HttpClient
from entrepot.errors import PeerError
from entrepot.exchange.node import Node

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from fastapi import FastAPI
    from tests.api.conftest import World

DATASET = "riverside-hospitals/outpatient-visits"
FORM = {"standard": "health.visit", "title": "Outpatient visits", "dataset": "outpatient-visits"}


def _publish(
    api: httpx.Client, world: World, data: bytes, key: str | None, **form: str
) -> httpx.Response:
    headers = world.auth("provider") | ({"Idempotency-Key": key} if key else {})
    return api.post(
        "/v1/datasets",
        data={**FORM, **form},
        files={"file": ("visits.csv", data, "text/csv")},
        headers=headers,
    )


def _versions(api: httpx.Client, world: World) -> list[int]:
    body = api.get(f"/v1/datasets/{DATASET}/versions", headers=world.auth("provider")).json()
    return [v["version"] for v in body["items"]]


@pytest.fixture
def visits(tmp_path: Path, make_visits: Callable[..., Path]) -> bytes:
    return bytes(make_visits(tmp_path / "new.csv", 40, seed=11).read_bytes())


def test_a_repeat_under_the_same_key_answers_the_first_and_adds_no_version(
    world: World, api: httpx.Client, visits: bytes
) -> None:
    # Forced, each request would add a version: only the key keeps the repeat from it.
    first = _publish(api, world, visits, "key-0001-aaaa", force="true")
    again = _publish(api, world, visits, "key-0001-aaaa", force="true")
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _versions(api, world) == [1, 2]
    assert len(world.node.log.search(kind="dataset_version")) == 3


def test_the_same_key_with_another_request_is_refused(
    world: World, api: httpx.Client, visits: bytes
) -> None:
    assert _publish(api, world, visits, "key-0002-bbbb").status_code == 201
    other_file = _publish(api, world, visits + visits.splitlines(keepends=True)[1], "key-0002-bbbb")
    other_title = _publish(api, world, visits, "key-0002-bbbb", title="Another title")
    for refused in (other_file, other_title):
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "conflict"
        assert error["idempotency"] == "reused"
        assert "Idempotency-Key" in error["message"]
    assert _versions(api, world) == [1, 2]


def test_a_refused_publish_leaves_its_key_free_for_the_corrected_retry(
    world: World, api: httpx.Client, visits: bytes
) -> None:
    refused = _publish(api, world, b"visit_id,cost\nV1,-3\n", "key-0003-cccc")
    assert 400 <= refused.status_code < 500
    # The key named a request that committed nothing; the same request runs afresh.
    again = _publish(api, world, b"visit_id,cost\nV1,-3\n", "key-0003-cccc")
    assert again.status_code == refused.status_code
    assert "Idempotent-Replayed" not in again.headers


def test_identical_bytes_without_a_key_give_the_existing_version(
    world: World, api: httpx.Client, visits: bytes
) -> None:
    first = _publish(api, world, visits, None).json()
    again = _publish(api, world, visits, None).json()
    assert (again["version"], again["sha256"]) == (first["version"], first["sha256"])
    assert _versions(api, world) == [1, 2]


def test_a_key_outlives_a_server_restart(
    tmp_path: Path,
    serve: Callable[[FastAPI], AbstractContextManager[httpx.Client]],
    make_world: Callable[[Node], World],
    make_visits: Callable[..., Path],
) -> None:
    from entrepot.settings import Settings

    settings = Settings(home=tmp_path / "node", token_hash_memory_kib=1024)
    node = Node.init(settings)
    world = make_world(node)
    data = make_visits(tmp_path / "new.csv", 30, seed=5).read_bytes()
    with serve(create_app(node)) as api:
        first = _publish(api, world, data, "key-0004-dddd", force="true").json()
    node.close()
    reopened = Node.open(settings)
    world.node = reopened
    try:
        with serve(create_app(reopened)) as api:
            again = _publish(api, world, data, "key-0004-dddd", force="true")
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == first
            assert _versions(api, world) == [1, 2]
    finally:
        reopened.close()


class _LosesAnswers(httpx.BaseTransport):
    """Loopback to the real server, losing the answer of the first ``lose`` publishes:
    the server did the work, the client hears a read time-out."""

    def __init__(self, lose: int) -> None:
        self._real = httpx.HTTPTransport()
        self.lose = lose
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._real.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/datasets":
            self.keys.append(request.headers["Idempotency-Key"])
            if self.lose > 0:
                self.lose -= 1
                response.read()
                response.close()
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self._real.close()


def _client(api: httpx.Client, world: World, transport: httpx.BaseTransport) -> HttpClient:
    return HttpClient(str(api.base_url), world.tokens["provider"], transport=transport)


def test_the_client_retries_a_lost_answer_under_the_same_key(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    source = make_visits(tmp_path / "new.csv", 25, seed=9)
    transport = _LosesAnswers(lose=1)
    with _client(api, world, transport) as client:
        published = client.publish(
            source,
            standard="health.visit",
            title="Outpatient visits",
            dataset="outpatient-visits",
            force=True,
        )
    assert published["version"] == 2
    assert len(transport.keys) == 2
    assert transport.keys[0] == transport.keys[1]
    assert _versions(api, world) == [1, 2]


def test_a_publish_twice_unanswered_names_its_key_and_a_later_retry_adds_nothing(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    source = make_visits(tmp_path / "new.csv", 25, seed=9)
    args: dict[str, Any] = {
        "standard": "health.visit",
        "title": "Outpatient visits",
        "dataset": "outpatient-visits",
        "force": True,
    }
    with _client(api, world, _LosesAnswers(lose=2)) as client, pytest.raises(PeerError) as lost:
        client.publish(source, **args)
    key = lost.value.details["idempotency_key"]
    assert key in lost.value.message
    assert "may still commit" in lost.value.message
    assert f"--idempotency-key {key}" in lost.value.hint
    assert "entrepot dataset versions ORG/outpatient-visits" in lost.value.hint
    with _client(api, world, _LosesAnswers(lose=0)) as client:
        again = client.publish(source, idempotency_key=key, **args)
    assert again["version"] == 2
    assert _versions(api, world) == [1, 2]
