"""A revoked token is refused at once by every server process sharing the node's database.

Each process holds its own cache of verified tokens, as each worker of
`entrepot serve --workers N` does: the test serves one node from this process and
from a second `entrepot serve` process on the same SQLite file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from entrepot.api import create_app
from entrepot.errors import Unauthorized
from entrepot.exchange.accounts import LOCAL, Accounts, IssuedToken
from entrepot.exchange.node import Node
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


@pytest.fixture
def other_worker(node: Node) -> Iterator[httpx.Client]:
    """`entrepot serve` on the same home, in a process of its own."""
    from tests.api.conftest import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "entrepot", "serve", "--home", str(node.home), "--port", str(port)],
        env={**os.environ, "ENTREPOT_TOKEN_CACHE_TTL_S": "30"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/healthz").raise_for_status()
                    break
                except httpx.TransportError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("entrepot serve did not start") from None
                    time.sleep(0.1)
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stderr is not None
        server.stderr.close()


def test_a_token_revoked_through_one_worker_is_refused_at_once_by_another(
    world: World, node: Node, other_worker: httpx.Client, serve: Serve
) -> None:
    operator = world.auth("operator")
    with serve(create_app(node)) as first_worker:
        issued = first_worker.post("/v1/accounts/consumer/tokens", headers=operator).json()
        fresh = {"Authorization": f"Bearer {issued['token']}"}
        # Both workers have verified (and cached) the new token.
        assert first_worker.get("/v1/me", headers=fresh).status_code == 200
        assert other_worker.get("/v1/me", headers=fresh).status_code == 200
        token_id = issued["info"]["token_id"]
        revoked = first_worker.post(f"/v1/tokens/{token_id}/revoke", headers=operator)
        assert revoked.status_code == 200
        refused = other_worker.get("/v1/me", headers=fresh)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        # The account's other token still works on both.
        for worker in (first_worker, other_worker):
            assert worker.get("/v1/me", headers=world.auth("consumer")).status_code == 200


class CountingHasher:
    """Counts the Argon2id verifications an Accounts makes (and makes them for real)."""

    def __init__(self, accounts: Accounts) -> None:
        self.real = accounts._hasher
        self.calls = 0
        accounts._hasher = self

    def verify(self, secret_hash: str, token: str) -> bool:
        self.calls += 1
        return bool(self.real.verify(secret_hash, token))

    def hash(self, secret: str) -> str:
        return str(self.real.hash(secret))


def token_settings(home: Path, ttl: float) -> Settings:
    return Settings(home=home, token_hash_memory_kib=1024, token_cache_ttl_s=ttl)


def test_only_the_argon2_check_is_cached_and_the_row_is_read_every_time(node: Node) -> None:
    accounts = Accounts(node.db, token_settings(node.home, 30), log=node.log)
    _info, issued = accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    hasher = CountingHasher(accounts)
    for _ in range(3):
        assert accounts.authenticate(issued.secret).account == "analyst"
    assert hasher.calls == 1
    # Revoked through another Accounts (another process): refused without a re-hash.
    Accounts(node.db, node.settings, log=node.log).revoke_token(LOCAL, issued.info.token_id)
    with pytest.raises(Unauthorized):
        accounts.authenticate(issued.secret)
    assert hasher.calls == 1


def test_with_the_cache_off_every_call_verifies(node: Node) -> None:
    accounts = Accounts(node.db, token_settings(node.home, 0), log=node.log)
    _info, issued = accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    hasher = CountingHasher(accounts)
    for _ in range(2):
        accounts.authenticate(issued.secret)
    assert hasher.calls == 2


TOKEN_ALPHABET = "0123456789abcdefABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz_-"


@pytest.fixture
def warm(node: Node) -> tuple[Accounts, IssuedToken]:
    """An Accounts whose cache holds one verified token."""
    accounts = Accounts(node.db, token_settings(node.home, 30), log=node.log)
    _info, issued = accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    accounts.authenticate(issued.secret)
    return accounts, issued


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(other=st.text(alphabet=TOKEN_ALPHABET, min_size=43, max_size=43))
def test_a_warm_cache_accepts_only_the_exact_token(
    warm: tuple[Accounts, IssuedToken], other: str
) -> None:
    accounts, issued = warm
    # The same shape and token id with any other secret is refused.
    prefix, secret = issued.secret[:17], issued.secret[17:]
    assume(other != secret)
    with pytest.raises(Unauthorized):
        accounts.authenticate(prefix + other)
    assert accounts.authenticate(issued.secret).account == "analyst"
