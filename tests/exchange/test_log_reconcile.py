"""node.db against the log: each change has its entry, each ε spent its entry and its use."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from tests.exchange.logged_world import CONSUMER, DATASET, SQL, seed
from tests.vault.visits import write_visits_csv

from entrepot.errors import ProofInvalid
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import Organization
from entrepot.exchange.node import Node
from entrepot.exchange.reconcile import Difference, Reconciliation
from entrepot.privacy.ledger import Ledger
from entrepot.standards import get
from entrepot.transparency import make_entry
from entrepot.vault import LocalVault, OnError, PublishRequest
from entrepot.vault.models import Dataset


@pytest.fixture
def world(node: Node, tmp_path: Path) -> Node:
    seed(node, tmp_path)
    return node


def _differences(node: Node) -> list[tuple[str, str]]:
    return [(d.what, d.subject) for d in Exchange(node).reconcile().differences]


def test_changes_made_through_the_exchange_all_have_their_entries(world: Node) -> None:
    found = Exchange(world).reconcile()
    assert found.ok, found.differences
    assert found.checked == {
        "accounts": 1,
        "grant changes": 1,
        "ledger rows": 1,
        "policies": 1,
        "versions": 1,
    }
    found.raise_for_differences()


def test_a_version_published_around_the_log_is_named(world: Node, tmp_path: Path) -> None:
    source = write_visits_csv(tmp_path / "more.csv", 50)
    with source.open("rb") as data:
        LocalVault.of(world).publish(
            PublishRequest(
                provider="riverside-hospitals",
                standard=get("health.visit"),
                title="Outpatient visits 2025",
                dataset="outpatient-visits",
                on_error=OnError.REJECT,
                filename="more.csv",
            ),
            data,
        )
    assert _differences(world) == [("dataset_version", f"{DATASET} v2")]
    with pytest.raises(ProofInvalid, match=f"{DATASET} v2: published, but the log has no entry"):
        Exchange(world).reconcile().raise_for_differences()


def test_epsilon_spent_without_a_query_entry_is_named(world: Node) -> None:
    """A query killed while it ran: its ledger row spent ε, and no entry says so."""
    ledger = Ledger(world.db)
    with world.db.read() as session:
        consumer = session.scalar(select(Organization.id).where(Organization.slug == CONSUMER))
        dataset = session.scalar(select(Dataset.id).where(Dataset.slug == "outpatient-visits"))
    assert consumer is not None
    assert dataset is not None
    reservation = ledger.reserve(consumer, dataset, 1, SQL, 0.25, 0.0, action="aggregate-query")
    ledger.mark_touched(reservation)
    assert ("query", f"ledger row {reservation.id}") in _differences(world)


def test_an_answer_entry_without_its_ledger_row_is_named(world: Node) -> None:
    world.log.append(
        make_entry(
            "query",
            f"org:{CONSUMER}",
            dataset=DATASET,
            epsilon=1,
            outcome="answered",
            reservation=99,
        )
    )
    world.log.append(make_entry("query", f"org:{CONSUMER}", epsilon=1, outcome="failed"))
    assert _differences(world) == [
        ("query", "reservation 99"),
        ("query", f"log entry {world.log.size - 1}"),
    ]


def test_grants_and_accounts_the_database_never_made_are_named(world: Node) -> None:
    world.log.append(
        make_entry("grant", "org:riverside-hospitals", grant="GRANT-7", change="granted")
    )
    world.log.append(make_entry("account", "local", account="ACCOUNT-99", change="created"))
    world.log.append(make_entry("account", "local", account="mallory", change="created"))
    assert _differences(world) == [
        ("grant", "GRANT-7"),
        ("account", "ACCOUNT-99"),
        ("account", "mallory"),
    ]


def test_a_reconciliation_survives_its_json_form() -> None:
    found = Reconciliation()
    found.checked["versions"] = 2
    found.add("grant", "GRANT-1", "revoked in node.db, but the log has no entry")
    again = Reconciliation.from_json(found.to_json())
    assert again.differences == [
        Difference("grant", "GRANT-1", "revoked in node.db, but the log has no entry")
    ]
    assert again.checked == found.checked
    with pytest.raises(ProofInvalid, match="malformed"):
        Reconciliation.from_json({"checked": {}, "differences": [{"what": "x"}]})
