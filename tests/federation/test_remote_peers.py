"""A consumer of one node asks for access and queries the data of another, on loopback.

The provider's node holds the grant, spends its own ledger, adds the noise and signs
the receipt; the consumer's node forwards and returns, and never sees a row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from tests.api.conftest import running
from tests.exchange.logged_world import DATASET, PROVIDER, seed
from tests.federation.nodes import federation_node as _node
from tests.portal.pages import Signed

from entrepot.api import create_app
from entrepot.client.http import HttpClient
from entrepot.client.local import LocalClient
from entrepot.errors import ContractViolation, NotFound, PolicyViolation
from entrepot.exchange import Exchange
from entrepot.exchange.actors import LOCAL
from entrepot.schemas.access import RemoteContractOut
from entrepot.transparency import verify_receipt

SQL = "SELECT COUNT(*) AS n FROM riverside.riverside_hospitals.outpatient_visits"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Exchange, Exchange, HttpClient]]:
    provider, consumer = _node(tmp_path, "riverside"), _node(tmp_path, "capital")
    seed(provider, tmp_path, query=False)
    theirs, mine = Exchange(provider), Exchange(consumer)
    _, token = mine.accounts.create(LOCAL, "city-desk", "consumer")
    with running(create_app(provider)) as b, running(create_app(consumer)) as a:
        mine.peers.add(str(b.base_url), bytes(provider.verify_key).hex())
        theirs.peers.add(str(a.base_url), bytes(consumer.verify_key).hex())
        with HttpClient(str(a.base_url), token.secret, timeout_s=120) as logged_in:
            yield theirs, mine, logged_in
    provider.close()
    consumer.close()


def spent(exchange: Exchange) -> float:
    return sum(e.epsilon for e in exchange.ledger.entries())


def peer_actions(exchange: Exchange) -> list[str]:
    """The node's peer entries, once the entries it owes its log are appended (a query's
    are owed in node.db with its answer and appended just after, off its path)."""
    exchange.node.outbox.replay()
    return [e["action"] for _, e in exchange.node.log.entries() if e["kind"] == "peer"]


def test_a_remote_query_is_answered_and_signed_by_the_datas_node(
    nodes: tuple[Exchange, Exchange, HttpClient],
) -> None:
    theirs, mine, logged_in = nodes
    consumer = LocalClient(mine, mine.actor("city-desk"))
    with pytest.raises(NotFound, match="asked this node for no access"):
        consumer.query(SQL, epsilon=0.5)
    asked = consumer.request_access(
        f"riverside:{DATASET}",
        purpose="public-health-surveillance",
        epsilon=2.0,
        until=date.today() + timedelta(days=30),
    )
    assert (asked["node"], asked["state"]) == ("riverside", "requested")
    assert asked["consumer"].endswith("capital-city-desk")
    # Not granted yet: the provider's node refuses, and nothing is spent anywhere.
    with pytest.raises(ContractViolation, match="peer riverside"):
        consumer.query(SQL, epsilon=0.5)
    [copy] = consumer.access_remote()
    assert (copy["node"], copy["id"], copy["state"], copy["fresh"]) == (
        "riverside",
        asked["id"],
        "requested",
        True,
    )
    provider = LocalClient(theirs, theirs.actor(PROVIDER))
    provider.grant_access(asked["id"])
    # The consumer's node reads its copy again from the provider's node: now a grant.
    [copy] = consumer.access_remote()
    assert (copy["node"], copy["state"], copy["dataset"]) == ("riverside", "granted", DATASET)
    # The local body is what the API's model writes, times with their Z included.
    assert copy == RemoteContractOut.model_validate(copy).model_dump(mode="json")
    assert copy["id"].startswith("GRANT-")
    assert consumer.access_grants() == []
    answered = consumer.query(SQL, epsilon=0.5)
    assert answered["node"] == "riverside"
    assert answered["epsilon_spent"] == 0.5
    receipt = json.dumps(answered["receipt"]).encode()
    verify_receipt(receipt, theirs.node.verify_key)
    # A query the provider's policy refuses spends nothing on either node.
    with pytest.raises(PolicyViolation, match="peer riverside"):
        consumer.query(
            "SELECT patient_id FROM riverside.riverside_hospitals.outpatient_visits", epsilon=0.5
        )
    # Logged in to its own node's server, the consumer reaches the peer the same way.
    [found] = logged_in.catalog_search_federated("visits")
    assert (found["node"], found["dataset"]) == ("riverside", DATASET)
    over_http = logged_in.query(SQL, epsilon=0.25)
    assert (over_http["node"], over_http["epsilon_spent"]) == ("riverside", 0.25)
    verify_receipt(json.dumps(over_http["receipt"]).encode(), theirs.node.verify_key)
    # So does the portal's console, signed in to its own node.
    console = Signed(logged_in.url, mine.accounts.issue_token(LOCAL, "city-desk").secret)
    in_portal = console.script("/portal/query", {"sql": SQL, "epsilon": 0.3})
    console.http.close()
    assert in_portal.status_code == 200, in_portal.text
    assert (in_portal.json()["node"], in_portal.json()["epsilon_spent"]) == ("riverside", 0.3)
    verify_receipt(json.dumps(in_portal.json()["receipt"]).encode(), theirs.node.verify_key)
    [copy] = logged_in.access_remote()
    assert (copy["node"], copy["state"], copy["fresh"]) == ("riverside", "granted", True)
    assert spent(theirs) == pytest.approx(1.05)
    assert mine.ledger.entries() == []
    assert peer_actions(mine) == ["added", "access_requested", *["query_answered"] * 3]
    assert peer_actions(theirs) == ["added", "access_request_received", *["query_received"] * 3]
