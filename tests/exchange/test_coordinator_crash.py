"""SIGKILL a query between the ledger's commit that spends its ε and the log's entry.

The completion and the ``answered`` (or ``failed``) entry are committed together, the
entry owed in the log's outbox: until the node is opened again the reconciliation
names it, and opening the node appends it, with its ε, exactly once. Asking the same
query again then repeats the answer for no ε, as for any answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from tests.exchange.crash import die_after, killed
from tests.exchange.logged_world import CONSUMER, SQL, seed

from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.privacy.ledger import Ledger
from entrepot.settings import Settings
from entrepot.vault import Operation, Outcome, Touched
from entrepot.vault._storage import OUTBOX_FAULT_POINTS

EPSILON = 0.5
# Where the child dies: just after the ledger's commit returns, or at each point of
# the outbox between that commit and the entry's mark.
POINTS = ("ledger-completed", *OUTBOX_FAULT_POINTS)


def _ask(home: Path, point: str, fail: bool) -> None:
    """The child: one query, killed at ``point``; ``fail`` makes it fail after reading."""
    armed = None if point == "ledger-completed" else point
    ex = Exchange(Node.open(Settings(home=home, fault_point=armed)))
    if point == "ledger-completed":
        die_after(Ledger, "complete")
    if fail:
        run = ex.vault.run

        def read_then_fail(operation: Operation, *, touched: Touched) -> Outcome:
            run(operation, touched=touched)
            raise OSError("the disk went away")

        ex.vault.run = read_then_fail
    ex.queries.run(ex.actor(CONSUMER), SQL, epsilon=EPSILON)


def _spending(node: Node) -> list[tuple[str, float, Any]]:
    return [
        (e["outcome"], float(e["epsilon"]), e.get("reservation"))
        for _, e in node.log.search(kind="query")
    ]


def _spent(ex: Exchange) -> float:
    [budget] = ex.ledger.budgets(consumer_id=ex.actor(CONSUMER).org_id)
    return budget.epsilon_spent


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("fail", [False, True], ids=["answered", "failed"])
def test_a_query_killed_after_spending_is_logged_with_its_epsilon_when_the_node_opens(
    tmp_path: Path, point: str, fail: bool
) -> None:
    home = tmp_path / "node"
    node = Node.init(Settings(home=home))
    seed(node, tmp_path, query=False)
    node.close()
    killed(_ask, home, point, fail)

    # As the dead process left it: the ε spent, its entry owed unless it was appended.
    raw = Node(Settings(home=home), SigningKey((home / "keys" / "node.key").read_bytes()))
    try:
        ex = Exchange(raw)
        assert _spent(ex) == pytest.approx(EPSILON)
        [reservation] = [row.id for row in ex.ledger.entries()]
        found = ex.reconcile().differences
        assert [d.what for d in found if d.what == "outbox"] == ["outbox"]
        unlogged = [(d.what, d.subject) for d in found if d.what != "outbox"]
        assert unlogged == (
            [] if point == "outbox-appended" else [("query", f"ledger row {reservation}")]
        )
    finally:
        raw.close()

    outcome = "failed" if fail else "answered"
    node = Node.open(Settings(home=home))
    try:
        ex = Exchange(node)
        assert _spending(node) == [(outcome, EPSILON, reservation)]
        assert ex.reconcile().differences == []
        if not fail:
            again = ex.queries.run(ex.actor(CONSUMER), SQL, epsilon=EPSILON)
            assert again.epsilon_spent == 0
            assert _spent(ex) == pytest.approx(EPSILON)
            assert _spending(node) == [(outcome, EPSILON, reservation), ("repeated", 0.0, None)]
            assert ex.reconcile().differences == []
    finally:
        node.close()
