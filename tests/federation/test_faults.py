"""A peer that misbehaves: each fault ends as one clear error that names the peer.

The misbehaving peer is a small app of the test's own, holding its own key: it
proves its identity like any node, then answers the catalog feed wrongly in one
way per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response
from nacl.signing import SigningKey
from tests.api.conftest import running

from entrepot.client.local import LocalClient
from entrepot.errors import PeerError
from entrepot.exchange import Exchange
from entrepot.exchange.actors import LOCAL
from entrepot.exchange.node import Node
from entrepot.federation.envelope import NONCE, SIGNATURE, sign_response
from entrepot.federation.feed import sync
from entrepot.settings import Settings

KEY = SigningKey(bytes(range(7, 39)))


def hostile(fault: str, asked: list[str] | None = None) -> FastAPI:
    app = FastAPI()

    def signed(request: Request, body: bytes, status: int = 200) -> Response:
        signature = sign_response(KEY, request.headers.get(NONCE, ""), status, body)
        return Response(body, status_code=status, headers={SIGNATURE: signature})

    @app.get("/federation/v1/node")
    def node(request: Request) -> Response:
        told = {"name": "rogue", "url": "http://x/", "key": bytes(KEY.verify_key).hex()}
        return signed(request, json.dumps(told).encode())

    @app.get("/federation/v1/catalog")
    def catalog(request: Request) -> Response:
        if asked is not None:
            asked.append(request.headers.get(NONCE, ""))
        if fault == "unsigned":
            return Response(b'{"dcat:dataset": []}')
        if fault == "redirect":
            return Response(status_code=307, headers={"Location": "http://169.254.169.254/"})
        if fault == "huge":
            return signed(request, b'{"pad": "' + b"x" * 200_000 + b'"}')
        if fault == "not-json":
            return signed(request, b"<html>hello</html>")
        return signed(request, json.dumps({"dcat:dataset": [{"dct:title": 1}]}).encode())

    return app


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Exchange]:
    opened = Node.init(
        Settings(
            home=tmp_path / "a",
            node_name="a",
            token_hash_memory_kib=1024,
            peer_timeout_s=30,
            peer_response_max_bytes=100_000,
        )
    )
    yield Exchange(opened)
    opened.close()


@pytest.mark.parametrize(
    ("fault", "message", "rule"),
    [
        ("unsigned", "without a valid signature", "response_signature"),
        ("redirect", r"redirect \(307\), which is not followed", None),
        ("huge", "more than 100000 bytes", None),
        ("not-json", "not JSON", None),
        ("garbage", "not valid", "feed_shape"),
    ],
)
def test_a_misbehaving_peer_is_named_and_its_fault_said(
    node: Exchange, fault: str, message: str, rule: str | None
) -> None:
    with running(hostile(fault)) as client:
        node.peers.add(str(client.base_url), bytes(KEY.verify_key).hex())
        with pytest.raises(PeerError, match=message) as caught:
            sync(node, "rogue")
    assert "rogue" in caught.value.message
    assert caught.value.details["peer"] == "rogue"
    assert caught.value.details.get("rule") == rule
    [peer] = node.peers.list()
    assert peer["status"].startswith("error: peer rogue")
    # A federated search still answers, from what the node holds.
    assert LocalClient(node, LOCAL).catalog_search_federated("anything") == []


def test_a_query_to_a_peer_that_is_down_names_it_and_spends_nothing(node: Exchange) -> None:
    with running(hostile("none")) as client:
        node.peers.add(str(client.base_url), bytes(KEY.verify_key).hex())
    node.accounts.create(LOCAL, "desk", "consumer")
    with pytest.raises(PeerError, match=r"peer rogue .* cannot be reached"):
        LocalClient(node, node.actor("desk")).query("SELECT COUNT(*) FROM rogue.p.d")
    assert node.ledger.entries() == []


def test_a_peer_that_keeps_failing_is_retried_then_paused_and_shown(tmp_path: Path) -> None:
    opened = Node.init(
        Settings(
            home=tmp_path / "a",
            node_name="a",
            token_hash_memory_kib=1024,
            peer_timeout_s=30,
            peer_retries=2,
            peer_backoff_s=0,
            peer_breaker_failures=2,
        )
    )
    node = Exchange(opened)
    asked: list[str] = []
    try:
        with running(hostile("unsigned", asked)) as client:
            node.peers.add(str(client.base_url), bytes(KEY.verify_key).hex())
            for _ in range(2):
                with pytest.raises(PeerError, match="without a valid signature"):
                    sync(node, "rogue")
            # Each sync was sent three times, each newly signed.
            assert len(asked) == 6
            assert len(set(asked)) == 6
            with pytest.raises(PeerError, match="not called until") as caught:
                sync(node, "rogue")
        assert len(asked) == 6
        assert caught.value.details["rule"] == "peer_paused"
        assert caught.value.details["peer"] == "rogue"
        [peer] = node.peers.list()
        assert peer["health"].startswith("paused until")
    finally:
        opened.close()
