"""`entrepot db move`: a node moved from SQLite to PostgreSQL answers as it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import build_world

from entrepot.client.local import LocalClient
from entrepot.errors import Conflict, InvalidInput
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.move import move_node
from entrepot.exchange.node import Node
from entrepot.settings import Settings

pytestmark = pytest.mark.postgres

SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"
CONSUMER = "city-health-bureau"


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ENTREPOT_DB"}
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def seen(node: Node) -> dict[str, Any]:
    """What the consumer and an auditor read of the node."""
    exchange = Exchange(node)
    consumer = LocalClient(exchange, exchange.accounts.actor(CONSUMER))
    local = LocalClient(exchange, LOCAL)
    return {
        "catalog": consumer.catalog_datasets(),
        # Each engine ranks with its own score (FTS5's bm25, PostgreSQL's ts_rank).
        "search": sorted(found["dataset"] for found in consumer.catalog_search("visits")),
        "budgets": consumer.budgets(),
        "grants": consumer.access_grants(),
        "usage": consumer.usage(date.today().strftime("%Y-%m")),
        "accounts": local.accounts(),
    }


def ask(node: Node) -> dict[str, Any]:
    exchange = Exchange(node)
    return LocalClient(exchange, exchange.accounts.actor(CONSUMER)).query(SQL, epsilon=0.5)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    node = Node.init(Settings(home=home, token_hash_memory_kib=1024))
    build_world(node)
    ask(node)
    node.close()
    return home


def test_a_moved_node_answers_identically(home: Path, pg_url: str) -> None:
    node = Node.open(Settings(home=home))
    before, first = seen(node), ask(node)
    node.close()

    moved = entrepot("db", "move", pg_url, "--home", str(home), "--json")
    assert moved.returncode == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert report["rows"]["ledger_entries"] == 1
    assert report["to"].startswith("postgresql")

    status = json.loads(entrepot("db", "status", "--home", str(home), "--json").stdout)
    assert status["backend"] == "postgresql"
    assert status["behind"] is False

    node = Node.open(Settings(home=home))
    try:
        assert node.db.engine.dialect.name == "postgresql"
        assert seen(node) == before
        again = ask(node)
        # The same question: the stored answer, byte for byte, at no further cost.
        assert again["answer"] == first["answer"]
        assert (again["repeated"], again["epsilon_spent"]) == (True, 0)
        assert again["epsilon_left"] == first["epsilon_left"]
        assert seen(node)["budgets"] == before["budgets"]
        exchange = Exchange(node)
        assert LocalClient(exchange, LOCAL).audit_reconciliation()["ok"] is True
        # New rows get new ids: the sequences start past the copied ones.
        Accounts(node.db, node.settings, log=node.log).create(LOCAL, "after-move", "auditor")
    finally:
        node.close()
    verified = entrepot("audit", "verify", "--home", str(home))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_database_that_holds_data_or_is_the_same_is_refused(home: Path, pg_url: str) -> None:
    move_node(Settings(home=home), pg_url)
    with pytest.raises(InvalidInput, match="already uses"):
        move_node(Settings(home=home), pg_url)
    other = home.parent / "other"
    node = Node.init(Settings(home=other, token_hash_memory_kib=1024))
    node.close()
    with pytest.raises(Conflict, match="already holds entrepot data"):
        move_node(Settings(home=other), pg_url)
    # The refused node still opens on its own SQLite database.
    reopened = Node.open(Settings(home=other))
    assert reopened.db.engine.dialect.name == "sqlite"
    reopened.close()
