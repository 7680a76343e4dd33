"""SIGKILL a release between the coordinator's completion and the release's own row,
and a read of one between its ledger's commit and its log entry.

The ε is spent and logged before the process dies; making the release again returns
it, recorded with the ε it was paid, without spending or logging that ε again. A read
is metered and its entry owed in the same commit: opening the node appends it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.exchange.crash import die_after, killed
from tests.exchange.logged_world import DATASET, PROVIDER
from tests.exchange.release_world import CONSUMER, seed

from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.exchange.release import ReleaseSpec
from entrepot.privacy.ledger import Ledger
from entrepot.settings import Settings

SPEC = ReleaseSpec(kind="synthetic", epsilon=2.0, rows=300)


def _settings(home: Path) -> Settings:
    return Settings(home=home, token_hash_memory_kib=1024)


def _make_and_die(home: Path) -> None:
    """The child: a release whose process is killed once the coordinator is done."""
    ex = Exchange(Node.open(_settings(home)))
    die_after(ex.releases.coordinator, "run")
    ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, SPEC)


def _spent(ex: Exchange) -> float:
    [budget] = ex.ledger.budgets(consumer_id=ex.actor(CONSUMER).org_id)
    return budget.epsilon_spent


def _releases_logged(ex: Exchange) -> list[tuple[str, Any]]:
    return [(e["outcome"], e.get("epsilon")) for _, e in ex.node.log.search(kind="release")]


def test_a_release_killed_before_its_row_keeps_its_epsilon_when_made_again(
    tmp_path: Path,
) -> None:
    home = tmp_path / "node"
    node = Node.init(_settings(home))
    seed(node, tmp_path)
    node.close()
    killed(_make_and_die, home)

    node = Node.open(_settings(home))
    try:
        ex = Exchange(node)
        # As the dead process left it: spent, logged and metered, and no release yet.
        assert _spent(ex) == pytest.approx(2.0)
        assert _releases_logged(ex) == [("answered", "2")]
        assert ex.releases.all(ex.actor(PROVIDER)) == []
        assert ex.reconcile().differences == []

        made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, SPEC)
        assert made.record.epsilon == 2.0
        assert made.record.rows == 300
        assert _spent(ex) == pytest.approx(2.0)
        assert _releases_logged(ex) == [("answered", "2"), ("repeated", "0")]
        assert [i.ident for i in ex.releases.shared(ex.actor(CONSUMER))] == [made.ident]
        assert ex.reconcile().differences == []
    finally:
        node.close()


def _read_and_die(home: Path, ident: int) -> None:
    """The child: a consumer's read of release ``ident``, killed once its use is spent."""
    ex = Exchange(Node.open(_settings(home)))
    die_after(Ledger, "complete")
    consumer = ex.actor(CONSUMER)
    ex.releases.read(consumer, ex.releases.readable(consumer, ident), files=1)


def test_a_read_killed_after_its_use_is_spent_is_logged_when_the_node_opens(
    tmp_path: Path,
) -> None:
    home = tmp_path / "node"
    node = Node.init(_settings(home))
    seed(node, tmp_path)
    ex = Exchange(node)
    made = ex.releases.create(ex.actor(PROVIDER), DATASET, CONSUMER, ReleaseSpec(k=5, l=2))
    node.close()
    killed(_read_and_die, home, made.record.id)

    node = Node.open(_settings(home))
    try:
        ex = Exchange(node)
        [(_, entry)] = node.log.search(kind="download")
        assert (entry["outcome"], entry["release"]) == ("answered", made.ident)
        assert ex.reconcile().differences == []
    finally:
        node.close()
