"""Private queries over HTTP, run by worker processes (and in-process with 0 workers).

Each test serves the real app on loopback and queries it as a consumer; what the
query path guarantees in-process must hold across the process boundary: answers,
refusals with their rule and their log entry, byte-identical repeats, budgets never
overspent under concurrency, a bounded queue, and workers that end with the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.api._query_workers import WorkerPool
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.privacy.ledger import Ledger
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World

SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"
DATASET = "riverside-hospitals/outpatient-visits"  # the consumer holds GRANT-1 on it
Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


def open_node(tmp_path: Path, **settings: int) -> Node:
    # Argon2id at 1 MiB: the same code path, without seconds per token.
    return Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024, **settings))


@pytest.fixture(params=[2, 0], ids=["worker-processes", "in-process"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, make_world: Callable[[Node], World]
) -> Iterator[World]:
    # One account sends every query of the races below.
    node = open_node(tmp_path, api_query_workers=request.param, api_query_per_account=64)
    yield make_world(node)
    node.close()


def slow_floor(node: Node, ms: int) -> None:
    """Pad every answer on the dataset to ``ms``: queries then overlap for sure."""
    Policies(node).set(LOCAL, DATASET, f"latency_floor_ms: {ms}\n", where="test")


def query_outcomes(settings: Settings) -> list[tuple[str, str]]:
    """(outcome, rule) of each query entry of the log, read afresh from disk."""
    node = Node.open(settings)
    try:
        return [(e["outcome"], e.get("rule", "")) for _, e in node.log.search(kind="query")]
    finally:
        node.close()


def test_answers_refusals_and_repeats_cross_the_boundary(world: World, serve: Serve) -> None:
    consumer = world.auth("consumer")
    with serve(create_app(world.node)) as api:
        first = api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.5}, headers=consumer)
        again = api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.5}, headers=consumer)
        hostile = api.post(
            "/v1/queries",
            json={"sql": "SELECT * FROM riverside_hospitals.outpatient_visits"},
            headers=consumer,
        )
        foreign = api.post(
            "/v1/queries",
            json={"sql": SQL, "epsilon": 0.5},
            headers=world.auth("other-consumer"),
        )
    assert first.status_code == 200, first.text
    assert first.json()["epsilon_spent"] == pytest.approx(0.5)
    assert first.json()["epsilon_left"] == pytest.approx(4.5)
    assert (again.json()["repeated"], again.json()["epsilon_spent"]) == (True, 0.0)
    assert again.json()["answer"] == first.json()["answer"]

    assert hostile.status_code == 403
    refusal = hostile.json()["error"]
    assert refusal["code"] == "policy_violation"
    assert refusal["hint"]
    assert foreign.status_code == 403
    clause = foreign.json()["error"]
    assert clause["code"] == "contract_violation"
    assert query_outcomes(world.node.settings) == [
        ("answered", ""),
        ("repeated", ""),
        ("refused", refusal["rule"]),
        ("refused", clause["clause"]),
    ]


def test_concurrent_queries_never_overspend_the_cap(world: World, serve: Serve) -> None:
    dataset_id = next(r.dataset for r in Ledger(world.node.db).budgets() if r.grant == 1)
    Ledger(world.node.db).set_cap(dataset_id, 1.0, actor="test")
    consumer = world.auth("consumer")
    with serve(create_app(world.node)) as api:

        def ask(i: int) -> httpx.Response:
            # Distinct ε, so that no answer is a free repeat of another.
            return api.post(
                "/v1/queries", json={"sql": SQL, "epsilon": 0.1 + i * 1e-6}, headers=consumer
            )

        with ThreadPoolExecutor(max_workers=16) as pool:
            responses = list(pool.map(ask, range(16)))
    answered = [r.json() for r in responses if r.status_code == 200]
    refused = [r.json()["error"] for r in responses if r.status_code != 200]
    assert {error["code"] for error in refused} == {"budget_exhausted"}, refused
    assert 0 < len(answered) < 16
    assert sum(answer["epsilon_spent"] for answer in answered) <= 1.0 + 1e-9
    assert Ledger(world.node.db).check() == []


@pytest.mark.parametrize("workers", [1, 0], ids=["worker-processes", "in-process"])
def test_a_full_queue_answers_429_naming_the_setting(
    tmp_path: Path, workers: int, serve: Serve, make_world: Callable[[Node], World]
) -> None:
    # One query runs (one worker, or one in-process slot), one waits, the rest are refused.
    node = open_node(
        tmp_path, api_query_workers=workers, api_query_concurrency=1, api_query_queue=1
    )
    world = make_world(node)
    slow_floor(node, 3000)
    consumer = world.auth("consumer")
    with serve(create_app(node)) as api:
        api.get("/v1/me", headers=consumer)  # verify the token once, before the burst

        def ask(i: int) -> httpx.Response:
            return api.post(
                "/v1/queries", json={"sql": SQL, "epsilon": 0.1 + i * 1e-6}, headers=consumer
            )

        with ThreadPoolExecutor(max_workers=6) as pool:
            responses = list(pool.map(ask, range(6)))
    node.close()
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429, 429, 429]
    full = next(r for r in responses if r.status_code == 429)
    assert full.headers["Retry-After"] == "1"
    error = full.json()["error"]
    assert (error["code"], error["setting"]) == ("limit_exceeded", "api_query_queue")
    assert "ENTREPOT_API_QUERY_QUEUE" in error["hint"]


def test_a_killed_worker_fails_its_query_and_the_pool_recovers(
    tmp_path: Path, serve: Serve, make_world: Callable[[Node], World]
) -> None:
    node = open_node(tmp_path, api_query_workers=1)
    world = make_world(node)
    slow_floor(node, 3000)
    consumer = world.auth("consumer")
    app = create_app(node)
    with serve(app) as api:
        pool: WorkerPool = app.state.query_runner
        (worker,) = pool.pids
        answers: list[httpx.Response] = []
        running = threading.Thread(
            target=lambda: answers.append(
                api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.2}, headers=consumer)
            )
        )
        running.start()
        while pool.in_flight == 0:
            time.sleep(0.01)
        os.kill(worker, signal.SIGKILL)
        running.join()
        after = api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.3}, headers=consumer)
        assert worker not in pool.pids
    assert Ledger(node.db).check() == []
    node.close()
    (killed,) = answers
    assert killed.status_code == 500
    assert killed.json()["error"]["code"] == "internal"
    assert "worker" in killed.json()["error"]["message"]
    assert after.status_code == 200, after.text


def test_a_worker_killed_while_idle_fails_one_query_and_the_pool_recovers(
    tmp_path: Path, serve: Serve, make_world: Callable[[Node], World]
) -> None:
    node = open_node(tmp_path, api_query_workers=1)
    consumer = make_world(node).auth("consumer")
    app = create_app(node)
    with serve(app) as api:
        pool: WorkerPool = app.state.query_runner
        (worker,) = pool.pids
        os.kill(worker, signal.SIGKILL)
        assert wait_gone([worker]) == []
        first = api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.2}, headers=consumer)
        after = api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.3}, headers=consumer)
        assert worker not in pool.pids
    assert Ledger(node.db).check() == []
    node.close()
    assert first.status_code == 500
    assert "worker" in first.json()["error"]["message"]
    assert after.status_code == 200, after.text


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_gone(pids: list[int], wait_s: float = 30) -> list[int]:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not all(gone(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if not gone(pid)]


def test_workers_end_with_the_pool(node: Node) -> None:
    async def started() -> WorkerPool:
        pool = WorkerPool(node.settings.model_copy(update={"api_query_workers": 2}))
        await pool.start()
        return pool

    pool = asyncio.run(started())
    pids = pool.pids
    assert len(pids) == 2
    assert os.getpid() not in pids
    pool.close()
    assert wait_gone(pids) == []


_ORPHAN = """
import asyncio, sys
from entrepot.api._query_workers import WorkerPool
from entrepot.settings import Settings

async def main():
    pool = WorkerPool(Settings(home=sys.argv[1], api_query_workers=2))
    await pool.start()
    print(*pool.pids, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_workers_end_when_the_server_is_killed(node: Node) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN, str(node.home)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    pids = [int(pid) for pid in server.stdout.readline().split()]
    assert len(pids) == 2
    server.kill()  # SIGKILL to the server alone: no shutdown runs
    server.wait()
    server.stdout.close()
    assert wait_gone(pids) == []


def test_one_account_holds_at_most_its_share_of_queries(
    tmp_path: Path, serve: Serve, make_world: Callable[[Node], World]
) -> None:
    node = open_node(tmp_path, api_query_workers=1, api_query_per_account=2)
    world = make_world(node)
    slow_floor(node, 3000)
    consumer = world.auth("consumer")
    with serve(create_app(node)) as api:
        api.get("/v1/me", headers=consumer)

        def ask(i: int) -> httpx.Response:
            return api.post(
                "/v1/queries", json={"sql": SQL, "epsilon": 0.1 + i * 1e-6}, headers=consumer
            )

        with ThreadPoolExecutor(max_workers=5) as pool:
            responses = list(pool.map(ask, range(5)))
    node.close()
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429, 429]
    full = next(r for r in responses if r.status_code == 429)
    assert full.json()["error"]["setting"] == "api_query_per_account"


def test_refusals_are_screened_without_a_query_process_and_padded(
    tmp_path: Path, serve: Serve, make_world: Callable[[Node], World]
) -> None:
    node = open_node(tmp_path, api_query_workers=1)
    world = make_world(node)
    slow_floor(node, 3000)
    # The other consumer holds no grant on this dataset: every query of its is refused.
    outsider = world.auth("other-consumer")
    app = create_app(node)
    with serve(app) as api:
        api.get("/v1/me", headers=outsider)
        pool: WorkerPool = app.state.query_runner
        refused: list[httpx.Response] = []

        def ask(i: int) -> None:
            body = {"sql": SQL, "epsilon": 0.1 + i * 1e-6}
            refused.append(api.post("/v1/queries", json=body, headers=outsider))

        senders = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
        for sender in senders:
            sender.start()
        while len(query_outcomes(node.settings)) < 4:
            time.sleep(0.05)
        # Logged by the screening, which holds no query process: each refusal gives its
        # place back at once and waits out the 3 s floor holding none.
        deadline = time.monotonic() + 2
        while pool.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.in_flight == 0
        assert not refused
        for sender in senders:
            sender.join()
    node.close()
    assert [r.status_code for r in refused] == [403] * 4
    assert {r.json()["error"]["clause"] for r in refused} == {"grant"}


def test_an_account_past_its_refusals_gets_429_and_floods_no_log(
    tmp_path: Path, serve: Serve, make_world: Callable[[Node], World]
) -> None:
    node = open_node(tmp_path, api_query_workers=0, api_refusals_per_minute=1)
    world = make_world(node)
    slow_floor(node, 0)
    outsider = world.auth("other-consumer")
    with serve(create_app(node)) as api:
        statuses = [
            api.post("/v1/queries", json={"sql": SQL}, headers=outsider).status_code
            for _ in range(22)
        ]
        limited = api.post("/v1/queries", json={"sql": SQL}, headers=outsider)
        answered = api.post("/v1/queries", json={"sql": SQL}, headers=world.auth("consumer"))
    refusals = query_outcomes(node.settings)
    node.close()
    assert statuses[:20] == [403] * 20
    assert set(statuses[20:]) == {429}
    assert limited.json()["error"]["setting"] == "api_refusals_per_minute"
    assert int(limited.headers["Retry-After"]) >= 1
    assert answered.status_code == 200, answered.text
    assert [outcome for outcome, _ in refusals].count("refused") == 20
