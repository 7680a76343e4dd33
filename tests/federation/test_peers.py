"""Two nodes on loopback: trusting each other by key, and one's catalog seen by the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from tests.api.conftest import free_port, running
from tests.exchange.logged_world import DATASET, seed
from tests.federation.nodes import federation_node as _node

from entrepot.api import create_app
from entrepot.client.local import LocalClient
from entrepot.errors import Conflict, InvalidInput, NotFound, PeerError, Unauthorized
from entrepot.exchange import Exchange
from entrepot.exchange.actors import LOCAL
from entrepot.exchange.node import Node
from entrepot.federation.feed import sync
from entrepot.transparency.notes import log_verifier, witness_verifier


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Node]:
    node = _node(tmp_path, "riverside")
    seed(node, tmp_path, query=False)
    yield node
    node.close()


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[Node]:
    node = _node(tmp_path, "capital")
    yield node
    node.close()


@pytest.fixture
def served(provider: Node) -> Iterator[str]:
    with running(create_app(provider)) as client:
        yield str(client.base_url)


def key(node: Node) -> str:
    return bytes(node.verify_key).hex()


def test_a_node_tells_its_name_url_and_key(provider: Node, served: str) -> None:
    told = httpx.get(served + "/federation/v1/node", timeout=60).json()
    public = bytes(provider.verify_key)
    assert told == {
        "name": "riverside",
        "url": "http://127.0.0.1:8000/",
        "key": key(provider),
        "log_vkey": log_verifier(public).vkey(),
        "witness_vkey": witness_verifier(public).vkey(),
    }


def test_a_peer_is_trusted_only_with_the_key_it_proves(
    provider: Node, consumer: Node, served: str
) -> None:
    peers = Exchange(consumer).peers
    with pytest.raises(PeerError, match=r"peer .*without a valid signature") as wrong:
        peers.add(served, bytes(SigningKey.generate().verify_key).hex())
    assert wrong.value.details["rule"] == "response_signature"
    with pytest.raises(InvalidInput, match="not a public key"):
        peers.add(served, "abc")
    with pytest.raises(InvalidInput, match="own"):
        peers.add(served, key(consumer))
    with pytest.raises(InvalidInput, match="credentials"):
        peers.add("http://user:pw@127.0.0.1:1/", key(provider))
    with pytest.raises(InvalidInput, match="not a peer's URL"):
        peers.add("file:///etc/passwd", key(provider))
    assert peers.list() == []
    added = peers.add(served, key(provider))
    assert (added["name"], added["key"], added["status"]) == (
        "riverside",
        key(provider),
        "never synced",
    )
    with pytest.raises(Conflict):
        peers.add(served, key(provider))
    assert [p["name"] for p in peers.list()] == ["riverside"]
    assert peers.remove("riverside")["name"] == "riverside"
    with pytest.raises(NotFound):
        peers.remove("riverside")


def test_a_peer_that_is_down_is_named(consumer: Node, provider: Node) -> None:
    with pytest.raises(PeerError, match=r"cannot be reached"):
        Exchange(consumer).peers.add(f"http://127.0.0.1:{free_port()}", key(provider))


def test_the_catalog_feed_answers_only_signed_requests_of_peers(served: str) -> None:
    unsigned = httpx.get(served + "/federation/v1/catalog", timeout=60)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["rule"] == "envelope_malformed"


def test_a_federated_search_lists_a_peers_datasets_marked_by_node(
    provider: Node, consumer: Node, served: str
) -> None:
    mine, theirs = Exchange(consumer), Exchange(provider)
    mine.peers.add(served, key(provider))
    # The provider's node answers only peers its own operator added.
    with pytest.raises(Unauthorized, match="peer riverside") as refused:
        sync(mine, "riverside")
    assert refused.value.details["rule"] == "envelope_unknown_key"
    assert "error" in mine.peers.list()[0]["status"]
    with running(create_app(consumer)) as own:
        theirs.peers.add(str(own.base_url), key(consumer))
    pulled = sync(mine, "riverside")
    assert (pulled["updated"], pulled["removed"]) == (1, 0)
    again = sync(mine, "riverside")
    assert again["updated"] == 0  # the cursor is past the newest dataset: nothing again
    found = LocalClient(mine, LOCAL).catalog_search_federated("visits")
    assert [(f["node"], f["dataset"], f["sql_name"]) for f in found] == [
        ("riverside", DATASET, "riverside_hospitals.outpatient_visits")
    ]
    assert found[0]["rows"] is None
    [peer] = mine.peers.list()
    assert peer["status"] == "ok"
    assert peer["last_sync_at"] is not None
    assert LocalClient(mine, LOCAL).catalog_search_federated("nothing-like-it") == []
    mine.peers.remove("riverside")
    assert LocalClient(mine, LOCAL).catalog_search_federated("visits") == []


def test_a_nonce_recorded_without_waiting_for_the_disk_is_refused_after_a_restart(
    tmp_path: Path,
) -> None:
    node = _node(tmp_path, "n")
    sender, nonce = "ab" * 32, "cd" * 16
    assert Exchange(node).peers.fresh(sender, nonce)
    assert not Exchange(node).peers.fresh(sender, nonce)
    node.close()
    reopened = Node.open(node.settings)
    assert not Exchange(reopened).peers.fresh(sender, nonce)
    assert Exchange(reopened).peers.fresh(sender, "ef" * 16)
    reopened.close()
