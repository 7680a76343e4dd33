from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from entrepot.api import create_app
from entrepot.api.limits import TokenBuckets
from entrepot.exchange.node import Node
from entrepot.settings import Settings

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


@pytest.fixture
def small_node(tmp_path: Path) -> Node:
    settings = Settings(
        home=tmp_path / "node",
        request_body_max_bytes=64,
        # One request back every few hours: none comes back during a test, however slow.
        rate_limit_per_s=0.0001,
        rate_limit_burst=3,
        token_hash_memory_kib=1024,
    )
    return Node.init(settings)


def test_declared_oversized_body_is_refused_naming_the_setting(
    small_node: Node, serve: Serve
) -> None:
    with serve(create_app(small_node)) as client:
        response = client.post("/v1/anything", content=b"x" * 65)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "limit_exceeded"
    assert error["setting"] == "request_body_max_bytes"
    small_node.close()


def test_rate_limit_answers_429_with_retry_after(small_node: Node, serve: Serve) -> None:
    headers = {"Authorization": "Bearer some-token"}
    with serve(create_app(small_node)) as client:
        statuses = [client.get("/v1/nothing", headers=headers).status_code for _ in range(5)]
        refused = client.get("/v1/nothing", headers=headers)
        other = client.get("/v1/nothing", headers={"Authorization": "Bearer other"})
    assert statuses == [404, 404, 404, 429, 429]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["setting"] == "rate_limit_per_s"
    assert other.status_code == 404
    small_node.close()


def test_healthz_is_not_rate_limited(small_node: Node, serve: Serve) -> None:
    with serve(create_app(small_node)) as client:
        assert {client.get("/healthz").status_code for _ in range(10)} == {200}
    small_node.close()


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=5), max_size=200),
)
def test_buckets_never_allow_more_than_burst_plus_refill(
    rate: float, burst: int, gaps: list[float]
) -> None:
    buckets = TokenBuckets(rate, burst)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        wait = buckets.take("k", now)
        assert wait >= 0
        allowed += wait == 0
    assert allowed <= burst + rate * now + 1e-6
