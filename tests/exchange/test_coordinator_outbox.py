"""An answer's entry goes through the log's outbox: its receipt, and the entries owed after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.exchange.logged_world import CONSUMER, SQL, seed

from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.exchange.outbox import Outbox, OutboxRow, pending_entries
from entrepot.transparency import Entry, make_entry, verify_receipt


@pytest.fixture
def world(node: Node, tmp_path: Path) -> Node:
    seed(node, tmp_path, query=False)
    return node


def _answered(node: Node) -> list[int]:
    return [i for i, e in node.log.search(kind="query") if e["outcome"] == "answered"]


def test_an_answer_appended_by_another_flush_is_given_its_own_receipt(
    world: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush_through = Outbox.flush_through

    def appended_elsewhere_first(outbox: Outbox, row: OutboxRow) -> int:
        # As when another thread's or process's flush takes the row before this one.
        assert outbox.replay() != []
        return flush_through(outbox, row)

    monkeypatch.setattr(Outbox, "flush_through", appended_elsewhere_first)
    ex = Exchange(world)
    result = ex.queries.run(ex.actor(CONSUMER), SQL, epsilon=0.5)

    assert [result.receipt.index] == _answered(world)
    assert verify_receipt(result.receipt.to_json(), world.verify_key).index == result.receipt.index
    assert ex.reconcile().differences == []


def test_an_entry_owed_with_an_answer_waits_for_its_caller_after_the_answer(
    world: Node,
) -> None:
    ex = Exchange(world)
    owed: list[Entry] = []

    def received(refs: object, spent: float) -> Entry:
        owed.append(make_entry("peer", "a-peer", action="query_received", epsilon=spent))
        return owed[-1]

    result = ex.queries.run(ex.actor(CONSUMER), SQL, epsilon=0.5, owed=received)

    assert [result.receipt.index] == _answered(world)
    assert pending_entries(world.db) == [owed[-1].to_bytes()]
    [appended] = world.outbox.replay()
    assert appended == result.receipt.index + 1
    assert ex.reconcile().differences == []
