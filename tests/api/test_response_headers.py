"""Every answer of the node, a refusal and an unexpected failure included, is never
sniffed into a page or a script, never cached, and never framed; a route that sets
its own caching keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import running

from entrepot.api import create_app
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings

DEFAULTS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def _defaults(answer: httpx.Response) -> dict[str, str | None]:
    return {name: answer.headers.get(name) for name in DEFAULTS}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """The node's app, with one route that fails as no route should, and a token."""
    node = Node.init(
        Settings(home=tmp_path / "node", token_hash_memory_kib=1024, request_body_max_bytes=1024)
    )
    _, issued = Accounts(node.db, node.settings, log=node.log).create(LOCAL, "ops", "operator")
    app = create_app(node)

    @app.get("/v1/failing")
    def failing() -> None:
        raise RuntimeError("a failure no route expects")

    try:
        with running(app) as client:
            yield client, issued.secret
    finally:
        node.close()


def test_every_answer_carries_the_default_headers(served: tuple[httpx.Client, str]) -> None:
    api, token = served
    bearer = {"Authorization": f"Bearer {token}"}
    answers = {
        "ok": api.get("/v1/me", headers=bearer),
        "public": api.get("/healthz"),
        "contract": api.get("/openapi.json"),
        "docs": api.get("/docs"),
        "unauthenticated": api.get("/v1/me"),
        "unknown path": api.get("/v1/nowhere"),
        "wrong method": api.delete("/healthz"),
        "invalid": api.get("/v1/tokens", params={"limit": "many"}, headers=bearer),
        "too large": api.post("/v1/accounts", content=b"{" + b" " * 2048 + b"}", headers=bearer),
        "unexpected": api.get("/v1/failing", headers=bearer),
    }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "ok": 200,
        "public": 200,
        "contract": 200,
        "docs": 200,
        "unauthenticated": 401,
        "unknown path": 404,
        "wrong method": 405,
        "invalid": 400,
        "too large": 413,
        "unexpected": 500,
    }
    for name, answer in answers.items():
        assert _defaults(answer) == DEFAULTS, name


def test_a_route_that_sets_its_own_caching_keeps_it(served: tuple[httpx.Client, str]) -> None:
    api, _ = served
    script = api.get("/portal/static/portal.js")
    assert script.status_code == 200
    assert script.headers["cache-control"] == "no-cache"
    assert script.headers["x-content-type-options"] == "nosniff"
    # A portal page keeps its own security headers, its stricter framing rule included.
    page = api.get("/")
    assert page.headers["content-security-policy"].count("frame-ancestors 'none'") == 1
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]
    assert page.headers.get_list("cache-control") == ["no-store"]
