"""SIGKILL a publish, a grant and a revocation at every step between commit and log.

The killed change is committed with its entry owed; until the node is opened again
the reconciliation names it, and opening the node appends the entry exactly once.
"""

from __future__ import annotations

import multiprocessing
import signal
from datetime import date, timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from tests.exchange.logged_world import CONSUMER, DATASET, PROVIDER, publish
from tests.vault.visits import write_visits_csv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import add_provider
from entrepot.vault._storage import OUTBOX_FAULT_POINTS

# (action, fault point): every point of the outbox, and the publish path's own last one.
CASES = [
    *(
        (action, point)
        for action in ("publish", "grant", "revoke")
        for point in OUTBOX_FAULT_POINTS
    ),
    ("publish", "after-commit"),
]


def _services(node: Node) -> tuple[Accounts, Contracts]:
    return (
        Accounts(node.db, node.settings, log=node.log),
        Contracts(node.db, node.settings, log=node.log),
    )


def _prepare(home: Path, source: Path, action: str) -> None:
    node = Node.init(Settings(home=home))
    add_provider(node.db, PROVIDER, "Riverside Hospitals")
    # Version 1 holds other rows than the child's publish, which makes version 2.
    publish(node, write_visits_csv(source.with_name("first.csv"), 40))
    accounts, contracts = _services(node)
    accounts.create(LOCAL, CONSUMER, "consumer")
    request = contracts.request(
        accounts.actor(CONSUMER),
        DATASET,
        purpose="public-health-surveillance",
        epsilon=2.0,
        until=date.today() + timedelta(days=30),
    )
    if action == "revoke":
        contracts.grant(accounts.actor(PROVIDER), request.ref)
    node.close()


def _act(home: Path, source: Path, action: str, point: str) -> None:
    """The child: one change, with the fault point armed."""
    node = Node.open(Settings(home=home, fault_point=point))
    accounts, contracts = _services(node)
    provider = accounts.actor(PROVIDER)
    if action == "publish":
        publish(node, source)
    elif action == "grant":
        contracts.grant(provider, "REQ-1")
    else:
        contracts.revoke(provider, "GRANT-1")


def _subject(action: str) -> tuple[str, str, str]:
    """The killed change, as the reconciliation names it and as its entry states it."""
    if action == "publish":
        return "dataset_version", f"{DATASET} v2", "dataset_version"
    return "grant", "GRANT-1", "granted" if action == "grant" else "revoked"


@pytest.mark.parametrize(("action", "point"), CASES)
def test_a_change_killed_before_its_entry_is_named_then_logged_once(
    tmp_path: Path, action: str, point: str
) -> None:
    home, source = tmp_path / "node", write_visits_csv(tmp_path / "visits.csv", 60)
    _prepare(home, source, action)
    child = multiprocessing.get_context("fork").Process(
        target=_act, args=(home, source, action, point)
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL

    what, subject, stated = _subject(action)
    # As the dead process left it: the change is committed, its entry owed.
    raw = Node(Settings(home=home), SigningKey((home / "keys" / "node.key").read_bytes()))
    try:
        found = Exchange(raw).reconcile().differences
        owed = [d for d in found if d.what == "outbox"]
        assert len(owed) == 1
        assert f'"kind":"{what}"' in owed[0].subject
        missing = [(d.what, d.subject) for d in found if d.what != "outbox"]
        # Killed after the append, the entry is in the log: only the mark is owed.
        assert missing == ([] if point == "outbox-appended" else [(what, subject)])
        entries_before = raw.log.size
    finally:
        raw.close()

    reopened = Node.open(Settings(home=home))
    try:
        assert Exchange(reopened).reconcile().ok
        stating = [
            entry
            for _, entry in reopened.log.entries()
            if entry["kind"] == stated or entry.get("change") == stated
        ]
        if action == "publish":
            stating = [e for e in stating if e["kind"] == "dataset_version" and e["version"] == 2]
        else:
            stating = [e for e in stating if e.get("grant") == "GRANT-1"]
        assert len(stating) == 1
        appended_on_open = reopened.log.size - entries_before
        assert appended_on_open == (0 if point == "outbox-appended" else 1)
    finally:
        reopened.close()
