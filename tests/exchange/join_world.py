"""A node with two holders' datasets that share people: hospital visits and payments.

Both policies allow the join; the consumer holds a grant on each for the action
``private-join``. Rows are given by the test, so answers can be checked exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import strategies as st

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.join import JoinQuery, JoinRun
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.privacy.plan import Plan
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, Operation, Outcome, PublishRequest, add_provider

__all__ = [
    "CONSUMER",
    "DISTRICTS",
    "PAYMENTS",
    "SQL",
    "VISITS",
    "JoinWorld",
    "Payment",
    "Recording",
    "Visit",
    "exact_answers",
    "payments_drawn",
    "plain_join",
    "priced",
    "visits_drawn",
]

VISITS = "riverside-hospitals/outpatient-visits"
PAYMENTS = "acme-pay/transactions"
CONSUMER = "city-health-bureau"
# Bounds loose enough that the test data never reaches them: the exact answer is the
# plain join's.
POLICY = """
contributions: {{rows_per_unit: {rows}, groups: 20}}
epsilon: {{per_query: 1.0, dataset_cap: 1000.0}}
latency_floor_ms: 0
join_with: [{other}]
"""

# (patient id as the hospital writes it, district, diagnosis group)
Visit = tuple[str, str, str]
# (person id as the payment company writes it, district, amount)
Payment = tuple[str, str, float]


SQL = (
    "SELECT t.district, COUNT(DISTINCT v.patient_id) AS people, COUNT(*) AS pairs, "
    "SUM(t.amount) AS paid FROM riverside_hospitals.outpatient_visits v "
    "JOIN acme_pay.transactions t ON v.patient_id = t.person_id "
    "WHERE v.diagnosis_group = 'I' GROUP BY t.district"
)
DISTRICTS = ("910101", "910102", "910103")


class Recording:
    """A vault that keeps every operation sent to a holder and what it answered."""

    def __init__(self, vault: LocalVault) -> None:
        self.vault = vault
        self.sent: list[tuple[Operation, Outcome]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vault, name)

    def run(self, operation: Operation, *, touched: Any) -> Outcome:
        outcome = self.vault.run(operation, touched=touched)
        self.sent.append((operation, outcome))
        return outcome


def priced(exchange: Exchange, sql: str) -> JoinRun:
    """The join ``sql`` asks, priced on the latest versions (at ε 0.5), to run by hand."""
    request = exchange.queries.request(sql, 0.5)
    assert isinstance(request, JoinQuery)
    found = {ref: exchange.coordinator.found(ref) for ref in request.datasets()}
    run = request.price(found).operation
    assert isinstance(run, JoinRun)
    return run


def plain_join(
    visits: Sequence[Visit], payments: Sequence[Payment]
) -> dict[str, tuple[float, float, float]]:
    """:data:`SQL`'s question over the raw rows, in plain SQL."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (patient_id TEXT, district TEXT, diagnosis TEXT)")
    con.execute("CREATE TABLE t (person_id TEXT, district TEXT, amount DOUBLE)")
    con.executemany("INSERT INTO v VALUES (?, ?, ?)", visits)
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", payments)
    rows = con.execute(
        "SELECT t.district, COUNT(DISTINCT replace(v.patient_id, '-', '')), COUNT(*), "
        "SUM(round(t.amount, 2)) FROM v JOIN t "
        "ON replace(v.patient_id, '-', '') = replace(t.person_id, '-', '') "
        "WHERE v.diagnosis = 'I' GROUP BY t.district"
    ).fetchall()
    return {d: (float(a), float(b), float(c)) for d, a, b, c in rows}


def exact_answers(plan: Plan, exact: pa.Table) -> dict[str, tuple[float, float, float]]:
    """:data:`SQL`'s exact answers per district, from the noiseless aggregates of
    ``plan``: a SUM read from a centred sum and a count is read the same way."""
    names = {q.kind: q.name for q in plan.rewrite.quantities}

    def paid(row: dict[str, float]) -> float:
        if "sum" in names:
            return row[names["sum"]]
        [derived] = plan.rewrite.derived
        return row[derived.centred] + derived.midpoint * row[derived.count]

    return {
        row["__k0"]: (row[names["units"]], row[names["rows"]], paid(row))
        for row in exact.to_pylist()
        if row["__k0"] is not None
    }


_PEOPLE = st.sampled_from([f"AB{i:04d}" for i in range(12)])
visits_drawn = st.lists(
    st.tuples(
        _PEOPLE.map(lambda p: p[:2] + "-" + p[2:]) | _PEOPLE,
        st.sampled_from(DISTRICTS),
        st.sampled_from(("I", "II")),
    ),
    min_size=1,
    max_size=14,
)
payments_drawn = st.lists(
    st.tuples(
        _PEOPLE,
        st.sampled_from(DISTRICTS),
        st.integers(1, 50_000).map(lambda c: c / 100),
    ),
    min_size=1,
    max_size=14,
)


class JoinWorld:
    """Publishes visits and payments on one node and grants the consumer both."""

    def __init__(self, home: Path, *, grant_payments: bool = True, rows: int = 1000) -> None:
        self.home = home
        self.node = Node.init(_settings(home))
        self.accounts = Accounts(self.node.db, self.node.settings, log=self.node.log)
        self.accounts.create(LOCAL, CONSUMER, "consumer")
        add_provider(self.node.db, "riverside-hospitals", "Riverside Hospitals")
        add_provider(self.node.db, "acme-pay", "Acme Pay")
        self.published = 0
        self.grant_payments = grant_payments
        self.rows = rows  # each person's rows per group, in both policies

    def publish(self, visits: Sequence[Visit], payments: Sequence[Payment]) -> None:
        """Publish a new version of each dataset (the first time: policies and grants)."""
        self.published += 1
        self._publish("riverside-hospitals", "health.visit", "Outpatient visits", _visits(visits))
        self._publish("acme-pay", "payments.transaction", "Transactions", _payments(payments))
        if self.published == 1:
            self._contract("riverside-hospitals", VISITS, "payments.transaction", True)
            self._contract("acme-pay", PAYMENTS, VISITS, self.grant_payments)

    def _publish(self, provider: str, standard: str, title: str, rows: list[list[str]]) -> None:
        raw = self.home.parent / f"{provider}-{self.published}.csv"
        with raw.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(get(standard).field_names)
            writer.writerows(rows)
        with raw.open("rb") as data:
            LocalVault.of(self.node).publish(
                PublishRequest(
                    provider=provider,
                    standard=get(standard),
                    title=title,
                    on_error=OnError.REJECT,
                    filename="rows.csv",
                    force=True,
                ),
                data,
            )

    def _contract(self, provider: str, dataset: str, other: str, grant: bool) -> None:
        owner = self.accounts.actor(provider)
        Policies(self.node).set(
            owner, dataset, POLICY.format(other=other, rows=self.rows), where="test"
        )
        if not grant:
            return
        contracts = Contracts(self.node.db, self.node.settings, log=self.node.log)
        request = contracts.request(
            self.accounts.actor(CONSUMER),
            dataset,
            purpose="public-health-surveillance",
            epsilon=500.0,
            until=date.today() + timedelta(days=30),
            actions=("aggregate-query", "private-join"),
        )
        contracts.grant(owner, request.ref, epsilon=500.0)

    def close(self) -> None:
        self.node.close()


def _settings(home: Path):  # type: ignore[no-untyped-def]
    from entrepot.settings import Settings

    return Settings(home=home, token_hash_memory_kib=1024)


def _visits(visits: Sequence[Visit]) -> list[list[str]]:
    return [
        [f"V{i:06d}", patient, "2025-03-04", district, "1", "35-44", diagnosis, "120.00", "1.0"]
        for i, (patient, district, diagnosis) in enumerate(visits)
    ]


def _payments(payments: Sequence[Payment]) -> list[list[str]]:
    return [
        [f"T{i:06d}", person, "G", district, "card", f"{amount:.2f}", "2025-03-05T10:00:00"]
        for i, (person, district, amount) in enumerate(payments)
    ]
