"""A dataset's δ is capped as its ε is: across consumers, in one conditional UPDATE.

Each reservation here asks 0.01 ε and 1e-10 δ under a δ cap of 1e-9: exactly ten pass,
from threads and from separate processes, on SQLite and on PostgreSQL; a refusal says
which cap ran out and debits nothing; a release gives δ back.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from entrepot.errors import BudgetExhausted, Conflict, ContractViolation
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts, Actor
from entrepot.exchange.catalog import publish_version
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.privacy import parse_policy
from entrepot.privacy.ledger import ATTO, DatasetCap, tighten_delta_cap, to_atto
from entrepot.privacy.policy import dataset_delta_cap, delta_limit
from entrepot.standards import get
from entrepot.vault import OnError, PublishRequest, add_provider
from marketplace import Market, race_processes

SQL = "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits"
PROVIDER = "org:riverside-hospitals"

# A worker process: waits for "go" on stdin, then reserves from several threads and
# prints how many reservations it got.
WORKER = """
import sys, threading
from entrepot.db import Database
from entrepot.errors import BudgetExhausted
from entrepot.privacy.ledger import Ledger

url, dataset, consumers, threads, each = sys.argv[1:6]
ledger = Ledger(Database(url))
consumers = [int(c) for c in consumers.split(",")]
won = []
lock = threading.Lock()

def run(index):
    for attempt in range(int(each)):
        consumer = consumers[(index + attempt) % len(consumers)]
        try:
            ledger.reserve(consumer, int(dataset), 1, "SELECT 1", 0.01, 1e-10)
        except BudgetExhausted:
            continue
        with lock:
            won.append(consumer)

print("ready", flush=True)
sys.stdin.readline()
workers = [threading.Thread(target=run, args=(i,)) for i in range(int(threads))]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(len(won), flush=True)
ledger.db.dispose()
"""


def _consumers(market: Market, count: int) -> list[Actor]:
    """``count`` consumers, each granted 10 ε: only the δ cap can bind."""
    consumers = [market.consumer] + [market.consumer_org(f"bureau-{i}") for i in range(count - 1)]
    for consumer in consumers:
        market.grant(consumer, epsilon=10.0)
    market.ledger.set_cap(market.dataset_id, 100.0, delta=1e-9, actor=PROVIDER)
    return consumers


def _org(actor: Actor) -> int:
    assert actor.org_id is not None
    return actor.org_id


def test_threads_never_overspend_the_delta_cap(market: Market) -> None:
    ids = [_org(c) for c in _consumers(market, 4)]
    start = threading.Barrier(20)
    won: Counter[int] = Counter()
    lock = threading.Lock()

    def run(index: int) -> None:
        start.wait()
        for attempt in range(5):
            consumer = ids[(index + attempt) % len(ids)]
            try:
                market.ledger.reserve(consumer, market.dataset_id, 1, SQL, 0.01, 1e-10)
            except (BudgetExhausted, ContractViolation):
                continue
            with lock:
                won[consumer] += 1

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(run, range(20)))
    assert sum(won.values()) == 10
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert (cap.delta_cap, cap.delta_spent, cap.delta_left) == (1e-9, 1e-9, 0.0)
    assert cap.epsilon_spent == pytest.approx(0.1)
    assert market.ledger.check() == []


@pytest.mark.slow
def test_processes_never_overspend_the_delta_cap(market: Market) -> None:
    ids = ",".join(str(_org(c)) for c in _consumers(market, 2))
    args = [market.node.db.url, str(market.dataset_id), ids, "5", "10"]
    outputs = race_processes(WORKER, args)
    assert sum(int(out) for out in outputs) == 10
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert cap.delta_left == 0
    assert len(market.ledger.entries()) == 10
    assert market.ledger.check() == []


def test_a_delta_refusal_names_the_dataset_cap_and_charges_nothing(market: Market) -> None:
    [consumer] = _consumers(market, 1)
    market.ledger.reserve(_org(consumer), market.dataset_id, 1, SQL, 0.5, 8e-10)
    before = market.ledger.budgets(consumer_id=consumer.org_id)
    with pytest.raises(BudgetExhausted) as refused:
        market.ledger.reserve(_org(consumer), market.dataset_id, 1, SQL, 0.5, 3e-10)
    assert refused.value.budget == "dataset"
    assert refused.value.details["resource"] == "delta"
    assert "δ cap has 2e-10 δ left" in refused.value.message
    assert "needs 3e-10 δ" in refused.value.message
    assert market.ledger.budgets(consumer_id=consumer.org_id) == before
    assert len(market.ledger.entries()) == 1
    market.ledger.reserve(_org(consumer), market.dataset_id, 1, SQL, 0.5, 2e-10)
    assert market.ledger.check() == []


def test_an_epsilon_refusal_says_epsilon(market: Market) -> None:
    [consumer] = _consumers(market, 1)
    market.ledger.set_cap(market.dataset_id, 0.5, actor=PROVIDER)
    with pytest.raises(BudgetExhausted) as refused:
        market.ledger.reserve(_org(consumer), market.dataset_id, 1, SQL, 0.6, 1e-10)
    assert refused.value.details["resource"] == "epsilon"
    assert "ε cap has 0.5 ε left" in refused.value.message


def test_release_gives_the_delta_back(market: Market) -> None:
    [consumer] = _consumers(market, 1)
    held = market.ledger.reserve(_org(consumer), market.dataset_id, 1, SQL, 0.5, 7e-10)
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert cap.delta_left == pytest.approx(3e-10)
    market.ledger.release(held)
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert (cap.delta_spent, cap.delta_left) == (0.0, 1e-9)
    assert market.ledger.check() == []


def test_a_delta_cap_never_goes_below_what_was_spent(market: Market) -> None:
    [consumer] = _consumers(market, 1)
    market.ledger.reserve(_org(consumer), market.dataset_id, 1, SQL, 0.5, 6e-10)
    with pytest.raises(Conflict) as refused:
        market.ledger.set_cap(market.dataset_id, 100.0, delta=5e-10, actor=PROVIDER)
    assert "6e-10 δ" in refused.value.message
    # Lowered by a larger version, it stops at the spend with nothing left.
    with market.node.db.write() as session:
        tighten_delta_cap(session, market.dataset_id, 1e-10, actor=PROVIDER, now=market.clock())
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert (cap.delta_cap, cap.delta_left) == (6e-10, 0.0)
    # Setting the ε cap alone keeps the δ cap.
    market.ledger.set_cap(market.dataset_id, 50.0, actor=PROVIDER)
    kept = market.ledger.cap(market.dataset_id)
    assert kept is not None
    assert (kept.epsilon_cap, kept.delta_cap) == (50.0, 6e-10)
    assert market.ledger.check() == []


@given(st.floats(min_value=1e-18, max_value=1.0, allow_nan=False))
def test_costs_round_up_and_caps_round_down(delta: float) -> None:
    assert to_atto(delta, round_up=False) <= delta * ATTO * (1 + 1e-15) + 1
    assert to_atto(delta) >= to_atto(delta, round_up=False)
    assert to_atto(delta) - to_atto(delta, round_up=False) <= 1


@given(rows=st.integers(min_value=0, max_value=10**12), delta=st.floats(1e-15, 1e-6))
def test_the_default_delta_cap_is_a_power_of_ten_within_the_limit_or_one_querys_delta(
    rows: int, delta: float
) -> None:
    standard = get("health.visit")
    limit = delta_limit(rows)
    laplace = dataset_delta_cap(parse_policy({}, standard), rows)
    assert laplace <= limit
    assert laplace > limit / 10
    assert f"{laplace:.0e}".startswith("1e")
    policy = parse_policy({"mechanism": "gaussian", "delta": delta}, standard)
    gaussian = dataset_delta_cap(policy, rows)
    assert gaussian == (max(laplace, delta) if delta <= limit else laplace)


def _csv(path: Path, rows: int) -> Path:
    """A valid health.visit CSV of ``rows`` rows, written by DuckDB."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'V' || lpad(i::VARCHAR, 7, '0') AS visit_id,
                 'P-' || lpad((i % 10000)::VARCHAR, 5, '0') AS patient_id,
                 (DATE '2025-01-01' + (i % 180)::INT)::VARCHAR AS visit_date,
                 ['910101', '910102'][1 + i % 2] AS district,
                 1 + i % 2 AS sex, '25-34' AS age_band, 'I' AS diagnosis_group,
                 (10 + i % 800)::DOUBLE AS cost, 1.5 AS duration_hours
               FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"""
    )
    con.close()
    return path


def _publish(node: Node, source: Path) -> None:
    request = PublishRequest(
        provider="riverside-hospitals",
        standard=get("health.visit"),
        title="Outpatient visits",
        on_error=OnError.REJECT,
        filename=source.name,
        dataset="outpatient-visits",
    )
    with source.open("rb") as data:
        publish_version(node, request, data)


def _delta_cap(node: Node) -> tuple[int, int]:
    with node.db.read() as session:
        row = session.scalar(select(DatasetCap))
        assert row is not None
        return row.delta_cap_atto, row.delta_remaining_atto


def test_the_policy_writes_the_delta_cap_and_a_larger_version_lowers_it(
    node: Node, tmp_path: Path
) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    provider = Accounts(node.db, node.settings, log=node.log).actor("riverside-hospitals")
    _publish(node, _csv(tmp_path / "small.csv", 2_000))
    ref = "riverside-hospitals/outpatient-visits"
    policies = Policies(node)
    policies.set(provider, ref, "mechanism: gaussian\nlatency_floor_ms: 0\n", where="test")
    # 2,000 rows: 1/(10·N) is above the 1e-6 ceiling.
    assert _delta_cap(node) == (10**12, 10**12)
    # 150,000 rows: 1/(10·N) = 6.7e-7, rounded down to 1e-7.
    _publish(node, _csv(tmp_path / "large.csv", 150_000))
    assert _delta_cap(node) == (10**11, 10**11)
    policies.set(provider, ref, "mechanism: gaussian\ndelta_cap: 5.0e-7\n", where="test")
    assert _delta_cap(node) == (5 * 10**11, 5 * 10**11)


def test_a_gaussian_query_past_the_delta_cap_is_refused_and_charged_nothing(
    node: Node, tmp_path: Path
) -> None:
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    _publish(node, _csv(tmp_path / "small.csv", 2_000))
    accounts = Accounts(node.db, node.settings, log=node.log)
    accounts.create(LOCAL, "city-health-bureau", "consumer")
    provider = accounts.actor("riverside-hospitals")
    ref = "riverside-hospitals/outpatient-visits"
    # 2,000 rows: a δ cap of 1e-6, two queries of 5e-7.
    gaussian = "mechanism: gaussian\ndelta: 5.0e-7\nlatency_floor_ms: 0\n"
    Policies(node).set(provider, ref, gaussian, where="test")
    contracts = Contracts(node.db, node.settings, log=node.log)
    consumer = accounts.actor("city-health-bureau")
    request = contracts.request(
        consumer,
        ref,
        purpose="public-health-surveillance",
        epsilon=2.0,
        until=date.today() + timedelta(days=30),
    )
    contracts.grant(provider, request.ref, epsilon=2.0)
    queries = Exchange(node).queries
    sql = SQL.replace("COUNT(*)", "district, COUNT(*)") + " GROUP BY district"
    for column in ("district", "sex"):
        answered = queries.run(consumer, sql.replace("district", column), epsilon=0.2)
        assert answered.answer.delta == 5e-7
    with pytest.raises(BudgetExhausted) as refused:
        queries.run(consumer, sql.replace("district", "age_band"), epsilon=0.2)
    assert (refused.value.budget, refused.value.details["resource"]) == ("dataset", "delta")
    [budget] = Exchange(node).budgets.visible(consumer)
    assert budget.epsilon_spent == pytest.approx(0.4)
    assert budget.cap is not None
    assert (budget.cap.delta_cap, budget.cap.delta_left) == (1e-6, 0.0)
