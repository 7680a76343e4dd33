"""A private query end to end on a real node: contract, policy, budget, log, receipt."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

import entrepot
from entrepot.engine import DuckDBSession
from entrepot.errors import (
    BudgetExhausted,
    ContractViolation,
    ExitCode,
    NotFound,
    PolicyViolation,
    QueryFailed,
)
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.privacy.answer import Answer
from entrepot.privacy.ledger import COMPLETED, Ledger
from entrepot.standards import codelist, get
from entrepot.transparency import verify_opening, verify_receipt
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

SQL = (
    "SELECT district, COUNT(*) AS visits, AVG(cost) AS avg_cost "
    "FROM riverside_hospitals.outpatient_visits GROUP BY district"
)
POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 5.0
latency_floor_ms: 0
threshold: 0
contributions:
  rows_per_unit: 1
  groups: 1
"""


def _write_visits(path: Path, rows: int) -> list[list[str]]:
    rng = random.Random(3)
    districts = codelist("region.district").codes[:4]
    data = [
        [
            f"V{i:06d}",
            f"P-{i:05d}",  # one visit per patient: bounding cuts nothing
            f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            rng.choice(districts),
            str(rng.choice((1, 2))),
            rng.choice(codelist("age_band").codes),
            rng.choice(codelist("diagnosis_group").codes),
            f"{rng.uniform(10, 900):.2f}",
            f"{rng.uniform(0.1, 5):.2f}",
        ]
        for i in range(rows)
    ]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(get("health.visit").field_names)
        writer.writerows(data)
    return data


@pytest.fixture
def exchange(node: Node, tmp_path: Path) -> tuple[Node, Actor, list[list[str]]]:
    raw = tmp_path / "visits.csv"
    rows = _write_visits(raw, 2_000)
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    with raw.open("rb") as data:
        LocalVault.of(node).publish(
            PublishRequest(
                provider="riverside-hospitals",
                standard=get("health.visit"),
                title="Outpatient visits 2025",
                on_error=OnError.REJECT,
                filename="visits.csv",
            ),
            data,
        )
    accounts = Accounts(node.db, node.settings, log=node.log)
    accounts.create(LOCAL, "city-health-bureau", "consumer")
    provider = accounts.actor("riverside-hospitals")
    Policies(node).set(provider, "riverside-hospitals/outpatient-visits", POLICY, where="test")
    consumer = accounts.actor("city-health-bureau")
    contracts = Contracts(node.db, node.settings, log=node.log)
    request = contracts.request(
        consumer,
        "riverside-hospitals/outpatient-visits",
        purpose="public-health-surveillance",
        epsilon=2.0,
        until=date.today() + timedelta(days=30),
    )
    contracts.grant(provider, request.ref, epsilon=2.0)
    return node, consumer, rows


def test_answer_is_noisy_close_signed_logged_and_metered(exchange: tuple) -> None:
    node, consumer, rows = exchange
    result = Exchange(node).queries.run(consumer, SQL, epsilon=1.0)
    counts = {}
    for row in rows:
        counts[row[3]] = counts.get(row[3], 0) + 1
    table = result.answer.to_pandas().set_index("district")
    for district, truth in counts.items():
        assert table.loc[district, "visits_lo"] <= table.loc[district, "visits_hi"]
        assert abs(table.loc[district, "visits"] - truth) < 100
    assert result.epsilon_spent == pytest.approx(1.0)
    assert result.epsilon_left == pytest.approx(1.0)
    verify_receipt(result.receipt.to_bytes(), node.verify_key)
    index, entry = node.log.search(kind="query")[-1]
    assert index == result.receipt.index
    assert entry["outcome"] == "answered"
    assert result.receipt.opening is not None
    assert result.receipt.opening.text == SQL
    verify_opening(result.receipt.opening, entry, answer=result.answer.to_json())
    assert entry["dataset"] == "riverside-hospitals/outpatient-visits"


def test_repeated_query_returns_the_same_bytes_for_free(exchange: tuple) -> None:
    node, consumer, _ = exchange
    queries = Exchange(node).queries
    first = queries.run(consumer, SQL, epsilon=0.5)
    again = queries.run(consumer, SQL, epsilon=0.5)
    assert again.repeated
    assert again.epsilon_spent == 0
    assert again.answer.to_json() == first.answer.to_json()
    assert again.epsilon_left == pytest.approx(1.5)


def test_budget_refusal_names_the_budget_and_is_logged(exchange: tuple) -> None:
    node, consumer, _ = exchange
    queries = Exchange(node).queries
    queries.run(consumer, SQL, epsilon=1.0)
    queries.run(consumer, SQL.replace("district", "sex"), epsilon=1.0)
    size = node.log.size
    with pytest.raises(BudgetExhausted) as refused:
        queries.run(consumer, SQL.replace("district", "age_band"), epsilon=0.5)
    assert refused.value.budget == "grant"
    assert node.log.size == size + 1
    _, entry = node.log.search(kind="query")[-1]
    assert (entry["outcome"], entry["rule"], entry["epsilon"]) == ("refused", "grant", "0")


def test_hostile_sql_is_refused_with_its_rule_and_spends_nothing(exchange: tuple) -> None:
    node, consumer, _ = exchange
    queries = Exchange(node).queries
    with pytest.raises(PolicyViolation) as refused:
        queries.run(consumer, "SELECT * FROM riverside_hospitals.outpatient_visits")
    assert refused.value.rule
    assert queries.run(consumer, SQL, epsilon=0.1).epsilon_left == pytest.approx(1.9)


def test_wrong_purpose_is_refused_by_the_purpose_clause(exchange: tuple) -> None:
    node, consumer, _ = exchange
    with pytest.raises(ContractViolation) as refused:
        Exchange(node).queries.run(consumer, SQL, epsilon=0.1, purpose="marketing")
    assert refused.value.clause == "purpose"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def test_cli_query_prints_intervals_and_a_receipt_that_verifies_offline(
    exchange: tuple, tmp_path: Path
) -> None:
    node, _, _ = exchange
    home = str(node.home)
    receipt = tmp_path / "receipt.json"
    shown = _cli("query", SQL, "--as", "city-health-bureau", "-e", "0.5", "--home", home)
    assert shown.returncode == 0, shown.stderr
    assert "95% interval" in shown.stdout
    assert "ε spent 0.5" in shown.stdout
    scripted = _cli(
        "query", SQL.replace("district", "sex"), "--as", "city-health-bureau",
        "-e", "0.5", "--home", home, "--json", "--receipt", str(receipt),
    )  # fmt: skip
    assert scripted.returncode == 0, scripted.stderr
    out = json.loads(scripted.stdout)
    assert out["epsilon_left"] == pytest.approx(1.0)
    shown_keys = {str(r["key"][0]) for r in out["answer"]["rows"]}
    assert shown_keys == set(codelist("sex").codes)
    other_home = tmp_path / "elsewhere"
    key = tmp_path / "node.pub"
    key.write_text((node.home / "keys" / "node.pub").read_text())
    verified = _cli("receipt", "verify", str(receipt), "--node-key", str(key),
                    "--home", str(other_home))  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert "valid" in verified.stdout


def test_cli_refusal_is_one_paragraph_with_the_rule(exchange: tuple) -> None:
    node, _, _ = exchange
    refused = _cli(
        "query", "SELECT patient_id FROM riverside_hospitals.outpatient_visits",
        "--as", "city-health-bureau", "--home", str(node.home),
    )  # fmt: skip
    assert refused.returncode == ExitCode.REFUSED
    assert "Traceback" not in refused.stderr
    assert "error:" in refused.stderr
    assert "refused by rule identifier" in refused.stderr
    assert "hint:" in refused.stderr


def test_python_api_connect_returns_interval_columns(exchange: tuple) -> None:
    node, _, _ = exchange
    with entrepot.connect(node.home, consumer="city-health-bureau") as ex:
        frame = ex.query(SQL, epsilon=0.25).to_pandas()
        left = {b.dataset: b.epsilon_left for b in ex.budgets()}
    assert {"district", "visits", "visits_lo", "visits_hi", "avg_cost_lo"} <= set(frame.columns)
    assert list(left.values()) == [pytest.approx(1.75)]


def _out_of_memory(*_: object, **__: object) -> None:
    # A fault after the rows were read, quoting a stored value.
    raise duckdb.OutOfMemoryException("could not allocate for 'P-00042'")


@pytest.mark.parametrize(
    "where",
    [(DuckDBSession, "execute"), (Answer, "to_json")],
    ids=["in the engine", "writing the answer"],
)
def test_a_failure_after_reading_is_charged_logged_metered_and_names_no_cause(
    exchange: tuple, monkeypatch: pytest.MonkeyPatch, where: tuple[type, str]
) -> None:
    node, consumer, _ = exchange
    monkeypatch.setattr(*where, _out_of_memory)
    size = node.log.size
    with pytest.raises(QueryFailed) as failed:
        Exchange(node).queries.run(consumer, SQL, epsilon=0.5)
    assert failed.value.status == 500
    assert "P-00042" not in failed.value.message + failed.value.hint
    assert node.log.size == size + 1
    _, entry = node.log.search(kind="query")[-1]
    assert (entry["outcome"], entry["epsilon"]) == ("failed", "0.5")
    (spent,) = Ledger(node.db).entries(consumer_id=consumer.org_id)
    assert spent.state == COMPLETED
    month = spent.finished_at.strftime("%Y-%m")
    (line,) = Exchange(node).metering.invoice(consumer, month).lines
    assert (line.uses, line.epsilon) == (1, pytest.approx(0.5))


def test_a_query_naming_an_unknown_dataset_is_refused_and_logged(exchange: tuple) -> None:
    node, consumer, _ = exchange
    size = node.log.size
    with pytest.raises(NotFound):
        Exchange(node).queries.run(consumer, "SELECT COUNT(*) FROM nobody.nothing", epsilon=0.5)
    assert node.log.size == size + 1
    _, entry = node.log.search(kind="query")[-1]
    assert (entry["outcome"], entry["rule"], entry["epsilon"]) == (
        "refused",
        "unknown_dataset",
        "0",
    )


def test_a_dataset_named_without_its_provider_is_told_its_catalog_name(exchange: tuple) -> None:
    node, consumer, _ = exchange
    with pytest.raises(PolicyViolation) as refused:
        Exchange(node).queries.run(consumer, "SELECT COUNT(*) AS n FROM outpatient_visits")
    assert refused.value.rule == "unknown_table"
    assert refused.value.hint == "write FROM riverside_hospitals.outpatient_visits"
