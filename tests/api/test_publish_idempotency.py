"""A publish over HTTP is one publish, however often its client sends it.

An ``Idempotency-Key`` names one publish request: a repeat answers what the first did
(also after the server restarted) and never adds a version, the same key with another
request is refused, and the HTTP client sends the request again under its key when
the first answer is lost. A publish renews its claim on the key while it runs, so a
repeat never takes over the key of a live publish, however long it runs; the key of a
killed one is free again once its lease lapses. A refusal inside the version's own
transaction, which rolls it back, leaves the key free; a failure once the version may
be committed (its commit failing included) is kept under the key: a repeat is refused
rather than publish again.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from tests.api.conftest import running

from entrepot.api import create_app
from entrepot.client import HttpClient
from entrepot.clock import utcnow
from entrepot.errors import PeerError
from entrepot.exchange.idempotency import LEASE, IdempotencyKey, IdempotencyKeys
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies, PolicyInfo
from entrepot.vault.models import Version
from marketplace import Clock

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from fastapi import FastAPI
    from tests.api.conftest import World

    from entrepot.vault.refs import DatasetRef

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


# -- a publish that runs long, one that dies, one that fails after its commit --------

KEY = "key-0005-eeee"


class _Pause:
    """Holds the first publish that asks for its dataset's policy (its file validated,
    nothing written yet) until the test lets it go: a publish as long as the test wants."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()


@pytest.fixture
def paused(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Pause]:
    pause = _Pause()
    real = Policies.get

    def get(policies: Policies, dataset: DatasetRef | str) -> PolicyInfo:
        if not pause.reached.is_set():
            pause.reached.set()
            pause.go.wait(60)
        return real(policies, dataset)

    monkeypatch.setattr(Policies, "get", get)
    yield pause
    pause.go.set()


def _on_clock(node: Node, clock: Clock, renew_every: timedelta) -> FastAPI:
    """The app over ``node``, its idempotency keys on ``clock``, renewed every ``renew_every``."""
    app = create_app(node)
    app.state.exchange.idempotency = IdempotencyKeys(node.db, clock=clock, renew_every=renew_every)
    return app


def _renewed(node: Node, clock: Clock) -> None:
    """Wait until the publish holding KEY has renewed its lease at the clock's time."""
    deadline = time.monotonic() + 30
    while True:
        with node.db.read() as session:
            lapses = session.scalar(
                select(IdempotencyKey.expires_at).where(IdempotencyKey.key == KEY)
            )
        if lapses == clock.now + LEASE:
            return
        assert time.monotonic() < deadline, "the running publish stopped renewing its key"
        time.sleep(0.01)


def test_a_publish_running_past_its_lease_keeps_its_key(
    node: Node,
    world: World,
    serve: Callable[[FastAPI], AbstractContextManager[httpx.Client]],
    visits: bytes,
    paused: _Pause,
) -> None:
    clock = Clock(utcnow())
    app = _on_clock(node, clock, renew_every=timedelta(milliseconds=10))
    with serve(app) as api, ThreadPoolExecutor(1) as pool:
        first = pool.submit(_publish, api, world, visits, KEY, force="true")
        assert paused.reached.wait(30)
        # Twenty minutes of one publish, well past its lease, renewed every five.
        for _ in range(4):
            clock.advance(minutes=5)
            _renewed(node, clock)
        retry = _publish(api, world, visits, KEY, force="true")
        paused.go.set()
        published = first.result(60)
        again = _publish(api, world, visits, KEY, force="true")
        versions = _versions(api, world)
    assert retry.status_code == 409, retry.text
    assert retry.json()["error"]["idempotency"] == "running"
    assert published.status_code == 201, published.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == published.json()
    assert versions == [1, 2]


def test_a_publish_that_stalled_past_its_lease_stops_before_its_commit(
    node: Node,
    world: World,
    serve: Callable[[FastAPI], AbstractContextManager[httpx.Client]],
    visits: bytes,
    paused: _Pause,
) -> None:
    clock = Clock(utcnow())
    # Renewals an hour apart: the first publish looks dead once its lease lapses.
    app = _on_clock(node, clock, renew_every=timedelta(hours=1))
    with serve(app) as api, ThreadPoolExecutor(1) as pool:
        first = pool.submit(_publish, api, world, visits, KEY, force="true")
        assert paused.reached.wait(30)
        clock.advance(seconds=LEASE.total_seconds() + 1)
        retry = _publish(api, world, visits, KEY, force="true")
        paused.go.set()
        stalled = first.result(60)
        versions = _versions(api, world)
    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert stalled.status_code == 409, stalled.text
    assert stalled.json()["error"]["idempotency"] == "running"
    assert versions == [1, 2]


def _publish_and_die(node: Node, world: World, data: bytes) -> None:
    """The child: a server of ``node`` that SIGKILLs itself once the publish's file is
    validated, with the key claimed and nothing written."""
    settings = node.settings.model_copy(
        update={"fault_point": "after-validate", "api_query_workers": 0}
    )
    with running(create_app(Node.open(settings))) as api:
        _publish(api, world, data, KEY, force="true")


def test_the_key_of_a_killed_publish_is_free_again_once_its_lease_lapses(
    node: Node,
    world: World,
    serve: Callable[[FastAPI], AbstractContextManager[httpx.Client]],
    visits: bytes,
) -> None:
    child = multiprocessing.get_context("fork").Process(
        target=_publish_and_die, args=(node, world, visits)
    )
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    clock = Clock(utcnow())
    with serve(_on_clock(node, clock, renew_every=timedelta(minutes=1))) as api:
        early = _publish(api, world, visits, KEY, force="true")
        clock.advance(seconds=LEASE.total_seconds() + 1)
        later = _publish(api, world, visits, KEY, force="true")
        versions = _versions(api, world)
    assert early.status_code == 409, early.text
    assert early.json()["error"]["idempotency"] == "running"
    assert later.status_code == 201, later.text
    assert "Idempotent-Replayed" not in later.headers
    assert versions == [1, 2]


def _fail(api: httpx.Client, world: World, data: bytes) -> None:
    """Publish under KEY where the server fails: it answers 500, or the connection, which
    it closes after an error it did not expect, drops first (a client of its own, so
    that ``api`` keeps no dropped connection)."""
    with (
        httpx.Client(base_url=api.base_url, timeout=30) as once,
        contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError),
    ):
        failed = _publish(once, world, data, KEY, force="true")
        assert failed.status_code == 500, failed.text


def test_a_publish_that_fails_after_its_commit_is_never_published_again(
    world: World, api: httpx.Client, visits: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = world.node.log
    append = log.append_encoded

    def full_disk(records: Sequence[bytes]) -> int:
        # The version is committed; its log entry waits in the outbox for the next append.
        monkeypatch.setattr(log, "append_encoded", append)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log, "append_encoded", full_disk)
    _fail(api, world, visits)
    committed = _versions(api, world)
    retry = _publish(api, world, visits, KEY, force="true")
    assert committed == [1, 2]
    assert retry.status_code == 409, retry.text
    error = retry.json()["error"]
    assert error["idempotency"] == "uncertain"
    assert "new key" in error["hint"]
    assert _versions(api, world) == [1, 2]
    renewed = _publish(api, world, visits, "key-0006-ffff", force="true")
    assert renewed.status_code == 201, renewed.text
    assert _versions(api, world) == [1, 2, 3]


def test_a_publish_that_fails_before_its_commit_leaves_its_key_free(
    world: World, api: httpx.Client, visits: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Policies.get

    def unreadable(policies: Policies, dataset: DatasetRef | str) -> PolicyInfo:
        monkeypatch.setattr(Policies, "get", real)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Policies, "get", unreadable)
    _fail(api, world, visits)
    retry = _publish(api, world, visits, KEY, force="true")
    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert _versions(api, world) == [1, 2]


def test_a_publish_refused_inside_its_transaction_leaves_its_key_free(
    world: World, api: httpx.Client, visits: bytes
) -> None:
    # The version's rows-per-unit estimate takes 0.2 ε from the dataset's cap in the
    # version's own transaction: a cap with nothing left refuses it there.
    exhausted = api.post(
        "/v1/budgets/caps",
        json={"dataset": DATASET, "epsilon": 0.2},
        headers=world.auth("provider"),
    )
    assert exhausted.status_code == 200, exhausted.text
    refused = _publish(api, world, visits, KEY, force="true")
    again = _publish(api, world, visits, KEY, force="true")
    for answer in (refused, again):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "budget_exhausted"
        assert "Idempotent-Replayed" not in answer.headers
    raised = api.post(
        "/v1/budgets/caps",
        json={"dataset": DATASET, "epsilon": 1.0},
        headers=world.auth("provider"),
    )
    assert raised.status_code == 200, raised.text
    published = _publish(api, world, visits, KEY, force="true")
    assert published.status_code == 201, published.text
    assert _versions(api, world) == [1, 2]


def test_a_publish_whose_commit_fails_keeps_its_key_uncertain(
    world: World, api: httpx.Client, visits: bytes
) -> None:
    def full_disk(session: Session) -> None:
        if any(
            isinstance(held, Version) and held.number == 2 for held in session.identity_map.values()
        ):
            raise OperationalError(
                "COMMIT", None, sqlite3.OperationalError("database or disk is full")
            )

    event.listen(Session, "before_commit", full_disk)
    try:
        failed = _publish(api, world, visits, KEY, force="true")
    finally:
        event.remove(Session, "before_commit", full_disk)
    assert failed.status_code == 500, failed.text
    assert "disk" in failed.json()["error"]["message"]
    retry = _publish(api, world, visits, KEY, force="true")
    assert retry.status_code == 409, retry.text
    assert retry.json()["error"]["idempotency"] == "uncertain"
    assert _versions(api, world) == [1]
