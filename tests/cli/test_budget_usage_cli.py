from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from marketplace import Clock, Market

DATASET = "riverside-hospitals/outpatient-visits"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A node where city-health-bureau spent 0.5 ε of a 2 ε grant in November 2026."""
    node = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    market = Market.on(node, Clock(datetime(2026, 11, 15, 10, 0)))
    market.grant(epsilon=2.0, max_queries=10, price_per_epsilon=50, price_per_query="0.10")
    assert market.consumer.org_id is not None
    for epsilon in (0.25, 0.25):
        held = market.ledger.reserve(market.consumer.org_id, market.dataset_id, 1, "q", epsilon)
        market.ledger.complete(held, rows_scanned=1000)
    node.close()
    return tmp_path / "node"


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--home", str(home)])


def test_budget_shows_granted_spent_left_and_the_cap(home: Path) -> None:
    result = invoke(home, "budget", "--as", "city-health-bureau", "--json")
    assert result.exit_code == 0, result.output
    [budget] = json.loads(result.stdout)
    assert budget["dataset"] == DATASET
    assert (budget["epsilon_granted"], budget["epsilon_spent"], budget["epsilon_left"]) == (
        2.0,
        0.5,
        1.5,
    )
    assert (budget["queries_used"], budget["max_queries"]) == (2, 10)
    assert budget["cap"]["epsilon_spent"] == 0.5


def test_the_provider_sets_the_cap_and_a_consumer_cannot(home: Path) -> None:
    result = invoke(
        home,
        "budget",
        "set-cap",
        DATASET,
        "--epsilon",
        "4",
        "--as",
        "riverside-hospitals",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epsilon_left"] == 3.5
    refused = invoke(
        home, "budget", "set-cap", DATASET, "--epsilon", "40", "--as", "city-health-bureau"
    )
    assert refused.exit_code != 0


def test_another_consumer_sees_no_budget(home: Path) -> None:
    node = Node.open(Settings(home=home, token_hash_memory_kib=1024))
    Accounts(node.db, node.settings, log=node.log).create(LOCAL, "harbour-statistics", "consumer")
    node.close()
    result = invoke(home, "budget", "--as", "harbour-statistics", "--json")
    assert json.loads(result.stdout) == []


def test_usage_as_csv_and_json_agree(home: Path) -> None:
    as_json = invoke(home, "usage", "--as", "city-health-bureau", "--month", "2026-11", "--json")
    as_csv = invoke(
        home, "usage", "--as", "city-health-bureau", "--month", "2026-11", "--format", "csv"
    )
    body = json.loads(as_json.stdout)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    # 2 uses × 0.10 + 0.5 ε × 50 = 25.20
    assert body["total"]["amount"] == rows[-1]["amount"] == "25.20"
    assert body["total"]["uses"] == int(rows[-1]["uses"]) == 2
    provider = json.loads(
        invoke(home, "usage", "--as", "riverside-hospitals", "--month", "2026-11", "--json").stdout
    )
    assert provider["role"] == "provider"
    # The same bill; the rows scanned (a version's exact row count) are the provider's only.
    assert body["total"]["rows_scanned"] is None
    assert provider["total"] == body["total"] | {"rows_scanned": 2000}
    table = invoke(home, "usage", "--as", "city-health-bureau", "--month", "2026-11").stdout
    assert "total" in table
    assert "25.20" in table
