"""What a token costs the server before it is known good, through the HTTP API.

Each test serves the real app on uvicorn over loopback and reads the count of
Argon2id checks the server ran (``app.state.exchange.accounts.verifications``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.api.limits import AuthGuard, TooManyAttempts
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


def limited_node(tmp_path: Path, **limits: Any) -> Node:
    # Budgets refill slowly enough that none comes back during a test on a loaded machine.
    limits.setdefault("auth_failures_per_min", 0.01)
    settings = Settings(
        home=tmp_path / "node", token_hash_memory_kib=1024, api_query_workers=0, **limits
    )
    return Node.init(settings)


def issue(node: Node, name: str) -> str:
    _info, issued = Accounts(node.db, node.settings, log=node.log).create(LOCAL, name, "consumer")
    return issued.secret


def guessed(token: str) -> str:
    """The same token id with another secret of the right shape."""
    prefix = token[: len("ent_") + 12 + 1]
    return prefix + secrets.token_urlsafe(32)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_wrong_secrets_for_one_token_id_get_429_without_a_check_each(
    tmp_path: Path, serve: Serve
) -> None:
    node = limited_node(tmp_path, auth_failures_burst=3, auth_address_failures_burst=100)
    token = issue(node, "bureau")
    app = create_app(node)
    with serve(app) as client:
        assert client.get("/v1/me", headers=bearer(token)).status_code == 200
        answers = [client.get("/v1/me", headers=bearer(guessed(token))) for _ in range(10)]
        cached = client.get("/v1/me", headers=bearer(token))
    assert [a.status_code for a in answers] == [401] * 3 + [429] * 7
    refused = answers[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["setting"] == "auth_failures_burst"
    # One check for the real token, then one per failure the burst allows, none after.
    assert app.state.exchange.accounts.verifications == 1 + 3
    # A token already verified is never held back by the guesses at its id.
    assert cached.status_code == 200
    node.close()


def test_failures_from_one_address_are_limited_across_token_ids(
    tmp_path: Path, serve: Serve
) -> None:
    node = limited_node(tmp_path, auth_failures_burst=10, auth_address_failures_burst=4)
    tokens = [issue(node, f"bureau-{i}") for i in range(3)]
    app = create_app(node)
    with serve(app) as client:
        statuses = [
            client.get("/v1/me", headers=bearer(guessed(tokens[i % 3]))).status_code
            for i in range(9)
        ]
        refused = client.get("/v1/me", headers=bearer(guessed(tokens[0])))
    assert statuses == [401] * 4 + [429] * 5
    assert refused.json()["error"]["setting"] == "auth_address_failures_burst"
    assert app.state.exchange.accounts.verifications == 4
    node.close()


def test_unknown_token_ids_spend_the_address_budget_without_a_check(
    tmp_path: Path, serve: Serve
) -> None:
    node = limited_node(tmp_path, auth_address_failures_burst=2)
    token = issue(node, "bureau")
    app = create_app(node)
    with serve(app) as client:
        statuses = [
            client.get(
                "/v1/me", headers=bearer(guessed(f"ent_{secrets.token_hex(6)}_"))
            ).status_code
            for _ in range(3)
        ]
        guess = client.get("/v1/me", headers=bearer(guessed(token)))
    assert statuses == [401, 401, 429]
    assert guess.status_code == 429
    assert app.state.exchange.accounts.verifications == 0
    node.close()


def test_a_success_gives_its_charge_back(tmp_path: Path, serve: Serve) -> None:
    # No cache: every request is checked, and none of them may use up the burst.
    node = limited_node(
        tmp_path, token_cache_ttl_s=0, auth_failures_burst=1, auth_address_failures_burst=1
    )
    token = issue(node, "bureau")
    app = create_app(node)
    with serve(app) as client:
        statuses = [client.get("/v1/me", headers=bearer(token)).status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert app.state.exchange.accounts.verifications == 5
    node.close()


def test_guesses_past_the_limit_are_refused_before_routing(tmp_path: Path, serve: Serve) -> None:
    node = limited_node(tmp_path, auth_failures_burst=2, auth_address_failures_burst=100)
    token = issue(node, "bureau")
    app = create_app(node)
    with serve(app) as client:
        for _ in range(2):
            assert client.get("/v1/me", headers=bearer(guessed(token))).status_code == 401
        # No route answers this path: a 429 rather than a 404 shows the request was
        # refused before FastAPI looked at it.
        refused = client.get("/v1/no-such-route", headers=bearer(guessed(token)))
        fine = client.get("/v1/me", headers=bearer(token))
    assert refused.status_code == 429
    assert refused.json()["error"]["setting"] == "auth_failures_burst"
    assert int(refused.headers["Retry-After"]) >= 1
    # Until the id's budget refills even its real secret waits, unchecked: only a token
    # verified before the guesses passes (see the first test).
    assert fine.status_code == 429
    assert app.state.exchange.accounts.verifications == 2
    node.close()


def test_a_new_clients_parallel_first_requests_share_one_check(
    tmp_path: Path, serve: Serve
) -> None:
    node = limited_node(tmp_path, auth_failures_burst=2, auth_address_failures_burst=2)
    token = issue(node, "bureau")
    app = create_app(node)
    with serve(app) as client, ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: client.get("/v1/me", headers=bearer(token)), range(16)))
    assert [a.status_code for a in answers] == [200] * 16
    # Requests that arrived while the first check ran waited for it instead of checking.
    assert app.state.exchange.accounts.verifications < 16
    node.close()


def test_a_revoked_token_is_refused_at_once_even_when_cached(tmp_path: Path, serve: Serve) -> None:
    node = limited_node(tmp_path)
    accounts = Accounts(node.db, node.settings, log=node.log)
    _info, issued = accounts.create(LOCAL, "bureau", "consumer")
    with serve(create_app(node)) as client:
        assert client.get("/v1/me", headers=bearer(issued.secret)).status_code == 200
        accounts.revoke_token(LOCAL, issued.info.token_id)
        assert client.get("/v1/me", headers=bearer(issued.secret)).status_code == 401
    node.close()


def test_the_rate_limit_is_per_token_id_not_per_secret(tmp_path: Path, serve: Serve) -> None:
    # One request back every few hours: none comes back during the test, however slow.
    node = limited_node(tmp_path, rate_limit_per_s=0.0001, rate_limit_burst=3)
    token = issue(node, "bureau")
    with serve(create_app(node)) as client:
        statuses = [
            client.get("/v1/nothing", headers=bearer(guessed(token))).status_code for _ in range(5)
        ]
    assert statuses[:3] == [404] * 3
    assert statuses[3:] == [429, 429]
    node.close()


def guard(concurrency: int, wait_s: float) -> AuthGuard:
    return AuthGuard(
        Settings(
            auth_verify_concurrency=concurrency,
            auth_verify_wait_s=wait_s,
            auth_failures_burst=1000,
            auth_address_failures_burst=1000,
        )
    )


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_checks_at_once_never_exceed_the_concurrency(concurrency: int) -> None:
    gate = guard(concurrency, wait_s=60)
    in_flight, peak, done = 0, 0, 0

    async def check(i: int) -> None:
        nonlocal in_flight, peak, done
        async with gate.attempt(f"{i:012x}", "127.0.0.1"):
            in_flight += 1
            peak = max(peak, in_flight)
            # Yield to the other tasks while "checking", as a thread's check does.
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            in_flight -= 1
            done += 1

    async def flood() -> None:
        async with anyio.create_task_group() as tasks:
            for i in range(48):
                tasks.start_soon(check, i)

    anyio.run(flood)
    assert peak == concurrency
    assert done == 48


def test_a_check_that_finds_no_free_slot_is_refused_with_429() -> None:
    gate = guard(1, wait_s=0)
    refusals: list[TooManyAttempts] = []

    async def scenario() -> None:
        async with gate.attempt("aaaaaaaaaaaa", "127.0.0.1"):
            try:
                async with gate.attempt("bbbbbbbbbbbb", "127.0.0.1"):
                    pass
            except TooManyAttempts as refused:
                refusals.append(refused)
        # The slot is free again once the first check ends.
        async with gate.attempt("bbbbbbbbbbbb", "127.0.0.1"):
            pass

    anyio.run(scenario)
    assert [r.setting for r in refusals] == ["auth_verify_concurrency"]
    assert refusals[0].status == 429
    assert refusals[0].details["retry_after_s"] >= 1
