"""A peer that misbehaves: each fault ends as one clear error that names the peer.

The misbehaving peer is a small app of the test's own, holding its own key: it
proves its identity like any node, then answers the catalog feed wrongly in one
way per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
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
from entrepot.federation.envelope import NONCE, SIGNATURE, key_hex, request_digest, sign_response
from entrepot.federation.feed import sync
from entrepot.settings import Settings

KEY = SigningKey(bytes(range(7, 39)))
OTHER_KEY = SigningKey(bytes(range(9, 41)))


def entry(**changed: object) -> dict[str, object]:
    """One dataset of a feed, as a node writes it, with ``changed`` fields."""
    return {
        "dct:identifier": "rogue-hospitals/visits",
        "dct:title": "Visits",
        "dct:description": "Outpatient visits",
        "dct:publisher": {"foaf:name": "Rogue Hospitals"},
        "dct:modified": {"@value": "2026-01-01T00:00:00+00:00"},
        "entrepot:standard": "health.visit",
        "entrepot:sqlName": "rogue_hospitals.visits",
        "dcat:version": "1",
        **changed,
    }


def feed(*entries: object) -> bytes:
    return json.dumps(
        {
            "dcat:dataset": list(entries),
            "entrepot:more": False,
            "entrepot:present": ["rogue-hospitals/visits"],
        }
    ).encode()


# A peer's dataset the node refuses to copy, and what it says of it.
HOSTILE_ENTRIES = {
    "escape": (entry(**{"dct:title": "Visits \x1b]0;owned\x07"}), r"title holds the control"),
    "bidi": (entry(**{"dct:description": "a \u202e b"}), r"description holds the control"),
    "identifier": (entry(**{"dct:identifier": "../../etc/passwd"}), r"not a valid slug"),
    "long-identifier": (entry(**{"dct:identifier": "p/" + "d" * 5000}), r"identifier has"),
    "version": (entry(**{"dcat:version": 10**30}), r"not a version number"),
    "version-text": (entry(**{"dcat:version": "1" * 30}), r"version has 30 characters"),
    "sector": (entry(**{"entrepot:sector": "Q\x1b"}), r"code holds the control"),
    "padding": (entry(pad=["x" * 1000] * 70), r"over 65536 characters"),
    "nesting": (entry(pad=json.loads("[" * 40 + "]" * 40)), r"deeper than 16"),
}


def hostile(fault: str, asked: list[str] | None = None) -> FastAPI:
    app = FastAPI()

    def signed(request: Request, body: bytes, status: int = 200) -> Response:
        signature = sign_response(KEY, request_digest(request.headers), status, body)
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
        if fault == "deep":
            return signed(request, b"[" * 40_000 + b"]" * 40_000)
        if fault == "fine":
            said = {"dct:title": "Visits " + "v" * 5000, "entrepot:sqlName": "x" * 5000}
            return signed(request, feed(entry(**said)))
        if fault in HOSTILE_ENTRIES:
            return signed(request, feed(HOSTILE_ENTRIES[fault][0]))
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
        ("redirect", r"redirect \(307\), which is not followed", "response_redirect"),
        ("huge", "more than 100000 bytes", "response_too_large"),
        ("not-json", "not JSON", "response_not_json"),
        ("deep", "not JSON", "response_not_json"),
        ("garbage", "not valid", "feed_shape"),
    ],
)
def test_a_misbehaving_peer_is_named_and_its_fault_said(
    node: Exchange, fault: str, message: str, rule: str
) -> None:
    with running(hostile(fault)) as client:
        node.peers.add(str(client.base_url), bytes(KEY.verify_key).hex())
        with pytest.raises(PeerError, match=message) as caught:
            sync(node, "rogue")
    assert "rogue" in caught.value.message
    assert caught.value.details["peer"] == "rogue"
    assert caught.value.details["rule"] == rule
    [peer] = node.peers.list()
    assert peer["status"].startswith("error: peer rogue")
    # A federated search still answers, from what the node holds.
    assert LocalClient(node, LOCAL).catalog_search_federated("anything") == []


@pytest.mark.parametrize("fault", sorted(HOSTILE_ENTRIES))
def test_a_peers_dataset_is_checked_before_its_copy_is_stored(node: Exchange, fault: str) -> None:
    with running(hostile(fault)) as client:
        node.peers.add(str(client.base_url), bytes(KEY.verify_key).hex())
        with pytest.raises(PeerError, match=HOSTILE_ENTRIES[fault][1]) as caught:
            sync(node, "rogue")
    assert caught.value.details["rule"] == "feed_shape"
    assert caught.value.message.startswith("peer rogue sent a catalog feed that is not valid")
    assert LocalClient(node, LOCAL).catalog_search_federated("visits") == []


def test_a_peers_dataset_is_named_in_sql_as_its_reference_says_and_cut_to_its_columns(
    node: Exchange,
) -> None:
    with running(hostile("fine")) as client:
        node.peers.add(str(client.base_url), bytes(KEY.verify_key).hex())
        assert sync(node, "rogue")["updated"] == 1
    [found] = LocalClient(node, LOCAL).catalog_search_federated("visits")
    assert (found["node"], found["dataset"], found["sql_name"]) == (
        "rogue",
        "rogue-hospitals/visits",
        "rogue_hospitals.visits",
    )
    # A text longer than its column is cut to it, as the copy always did.
    assert found["title"] == "Visits " + "v" * 293


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


def claiming(name: str, key: SigningKey) -> FastAPI:
    """A node that calls itself ``name`` and answers any query with that name."""
    app = FastAPI()

    def signed(request: Request, said: dict[str, object]) -> Response:
        body = json.dumps(said).encode()
        signature = sign_response(key, request_digest(request.headers), 200, body)
        return Response(body, headers={SIGNATURE: signature})

    @app.get("/federation/v1/node")
    def node(request: Request) -> Response:
        return signed(request, {"name": name, "url": "http://x/", "key": key_hex(key.verify_key)})

    @app.post("/federation/v1/query")
    def query(request: Request) -> Response:
        return signed(request, {"answered_by": name})

    return app


def test_a_peer_cannot_take_the_name_another_peers_queries_are_sent_under(
    node: Exchange,
) -> None:
    node.accounts.create(LOCAL, "desk", "consumer")
    desk = LocalClient(node, node.actor("desk"))
    with (
        running(claiming("city-lab", KEY)) as real,
        running(claiming("city_lab", OTHER_KEY)) as rogue,
    ):
        node.peers.add(str(real.base_url), key_hex(KEY.verify_key))
        # city-lab's tables are written city_lab.<provider>.<dataset> in SQL: a peer
        # named city_lab would have them sent to it.
        with pytest.raises(PeerError, match="'city_lab', not a node's name") as caught:
            node.peers.add(str(rogue.base_url), key_hex(OTHER_KEY.verify_key))
        assert caught.value.details["rule"] == "peer_name"
        answered = desk.query("SELECT COUNT(*) AS n FROM city_lab.lab.tests")
    assert (answered["node"], answered["answered_by"]) == ("city-lab", "city-lab")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a", "this node's own name"),
        ("Rogue", "not a node's name"),
        ("rogue\x1b]0;owned\x07", "not a node's name"),
        ("r" * 64, "not a node's name"),
        ("", "not a node's name"),
    ],
    ids=["own", "capitals", "escape", "long", "empty"],
)
def test_a_peer_naming_itself_as_no_node_may_is_refused(
    node: Exchange, name: str, why: str
) -> None:
    with running(claiming(name, KEY)) as rogue, pytest.raises(PeerError, match=why) as caught:
        node.peers.add(str(rogue.base_url), key_hex(KEY.verify_key))
    assert caught.value.details["rule"] == "peer_name"
    assert node.peers.list() == []


GRANT = {
    "id": "REQ-1",
    "dataset": "rogue-hospitals/visits",
    "state": "requested",
    "purpose": "public-health-surveillance",
    "epsilon": 1.0,
    "valid_until": "2030-01-01",
}


def granting(listed: list[object]) -> FastAPI:
    """A peer that takes any access request as ``GRANT`` and lists ``listed``."""
    app = FastAPI()

    def signed(request: Request, said: object) -> Response:
        body = json.dumps(said).encode()
        signature = sign_response(KEY, request_digest(request.headers), 200, body)
        return Response(body, headers={SIGNATURE: signature})

    @app.get("/federation/v1/node")
    def node(request: Request) -> Response:
        return signed(
            request, {"name": "rogue", "url": "http://x/", "key": key_hex(KEY.verify_key)}
        )

    @app.post("/federation/v1/access")
    def access(request: Request) -> Response:
        return signed(request, GRANT)

    @app.post("/federation/v1/access/list")
    def contracts(request: Request) -> Response:
        return signed(request, {"contracts": listed})

    return app


@pytest.mark.parametrize(
    "listed",
    [
        [{**GRANT, "purpose": "research \x1b]0;owned\x07"}],
        [{**GRANT, "dataset": "rogue-hospitals/" + "v" * 5000}],
        [{**GRANT, "epsilon": "lots"}],
        [{**GRANT, "epsilon": float("inf")}],
        [GRANT, {**GRANT, "state": "granted"}],
        ["REQ-1"],
    ],
    ids=["escape", "long", "epsilon-text", "epsilon-infinite", "same-id-twice", "not-an-object"],
)
def test_a_peers_list_of_contracts_is_checked_before_its_copy_is_kept(
    node: Exchange, listed: list[object]
) -> None:
    node.accounts.create(LOCAL, "desk", "consumer")
    desk = LocalClient(node, node.actor("desk"))
    with running(granting(listed)) as rogue:
        node.peers.add(str(rogue.base_url), key_hex(KEY.verify_key))
        desk.request_access(
            "rogue:rogue-hospitals/visits",
            purpose="public-health-surveillance",
            epsilon=1.0,
            until=date(2030, 1, 1),
        )
        # Refused whole: the copy stays as last read, marked as not fresh.
        [copy] = desk.access_remote()
    assert {k: copy[k] for k in GRANT} == GRANT
    assert (copy["node"], copy["fresh"]) == ("rogue", False)
