"""A private join query end to end, its time split by step, against the plain SQL join.

Two datasets on one node, visits (health.visit) and payments (payments.transaction),
each of N rows about N distinct people with half of them in common, joined on their
resident numbers::

    SELECT t.district, COUNT(DISTINCT v.patient_id) AS people, SUM(t.amount) AS paid
    FROM visits v JOIN payments t ON v.patient_id = t.person_id GROUP BY t.district

One run reports the private join through ``Queries.run`` (the coordinator: plan,
ledger, both holders' Blind and Reblind through the vault protocol, match, the plan's
bounded aggregates, noise, log and receipt) split by step, and in the same run the
plain join of the same rows in DuckDB (no privacy, a floor for the SQL part) and
``psi.intersect`` of the same keys (the PSI alone). Publishing the datasets is set-up
and not timed.

    .venv/bin/python benchmarks/bench_join.py                       # 1M × 1M, then 10k × 10M
    .venv/bin/python benchmarks/bench_join.py --left 50000 --right 50000 --small 0
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.join import STEPS, JoinQuery
from entrepot.exchange.node import Node
from entrepot.privacy import psi
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault import LocalVault, OnError, PublishRequest, add_provider

CONSUMER = "city-health-bureau"
SQL = (
    "SELECT t.district, COUNT(DISTINCT v.patient_id) AS people, SUM(t.amount) AS paid "
    "FROM riverside_hospitals.outpatient_visits v "
    "JOIN acme_pay.transactions t ON v.patient_id = t.person_id GROUP BY t.district"
)
POLICY = """
epsilon: {{per_query: 1.0, dataset_cap: 1000.0}}
latency_floor_ms: 0
join_with: [{other}]
"""
DISTRICTS = np.array(["910101", "910102", "910103", "910104"])


def load() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def ids(count: int, offset: int) -> np.ndarray:
    numbers = (np.arange(offset, offset + count, dtype=np.int64) * 7919 + 12345) % 10**10
    return np.char.add("ZR", np.char.zfill(numbers.astype(str), 10))


def _write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    pacsv.write_csv(pa.table({k: pa.array(v) for k, v in columns.items()}), path)
    return path


def build(home: Path, left: int, right: int) -> tuple[Node, Path, Path]:
    """A node with ``left`` visits and ``right`` payments, overlapping in min/2 people."""
    node = Node.init(Settings(home=home, token_hash_memory_kib=1024, query_timeout_s=3600))
    rng = np.random.default_rng(7)
    shared = min(left, right) // 2
    visits = _write(
        home.parent / "visits.csv",
        {
            "visit_id": np.char.add("V", np.arange(left).astype(str)),
            "patient_id": ids(left, 0),
            "visit_date": np.full(left, "2025-03-04"),
            "district": rng.choice(DISTRICTS, left),
            "sex": np.full(left, "1"),
            "age_band": np.full(left, "35-44"),
            "diagnosis_group": np.full(left, "I"),
            "cost": np.full(left, "120.00"),
            "duration_hours": np.full(left, "1.0"),
        },
    )
    payments = _write(
        home.parent / "payments.csv",
        {
            "transaction_id": np.char.add("T", np.arange(right).astype(str)),
            "person_id": ids(right, left - shared),
            "merchant_sector": np.full(right, "G"),
            "district": rng.choice(DISTRICTS, right),
            "channel": np.full(right, "card"),
            "amount": np.round(rng.uniform(1, 500, right), 2).astype(str),
            "paid_at": np.full(right, "2025-03-05T10:00:00"),
        },
    )
    exchange = Exchange(node)
    exchange.accounts.create(LOCAL, CONSUMER, "consumer")
    for provider, standard, path, dataset, other in (
        (
            "riverside-hospitals",
            "health.visit",
            visits,
            "outpatient-visits",
            "payments.transaction",
        ),
        ("acme-pay", "payments.transaction", payments, "transactions", "health.visit"),
    ):
        add_provider(node.db, provider, provider)
        with path.open("rb") as data:
            LocalVault.of(node).publish(
                PublishRequest(
                    provider=provider,
                    standard=get(standard),
                    title=dataset,
                    dataset=dataset,
                    on_error=OnError.REJECT,
                    filename=path.name,
                ),
                data,
            )
        owner = exchange.accounts.actor(provider)
        ref = f"{provider}/{dataset}"
        exchange.policies.set(owner, ref, POLICY.format(other=other), where="bench")
        request = exchange.contracts.request(
            exchange.actor(CONSUMER),
            ref,
            purpose="public-health-surveillance",
            epsilon=100.0,
            until=date.today() + timedelta(days=30),
            actions=("private-join",),
        )
        exchange.contracts.grant(owner, request.ref, epsilon=100.0)
    return node, visits, payments


def run(left: int, right: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        node, visits, payments = build(Path(tmp) / "node", left, right)
        print(f"set-up (publish both) {time.perf_counter() - started:.1f} s, load {load()}")
        exchange = Exchange(node)
        consumer = exchange.actor(CONSUMER)
        request = exchange.queries.request(SQL, 0.5)
        assert isinstance(request, JoinQuery)
        wall = time.perf_counter()
        done = exchange.coordinator.run(consumer, request)
        wall = time.perf_counter() - wall
        steps = {step: request.timings.get(step, 0.0) for step in STEPS}
        rest = wall - sum(steps.values())

        con = duckdb.connect()
        plain = time.perf_counter()
        con.execute(
            f"SELECT t.district, COUNT(DISTINCT v.patient_id), SUM(t.amount) "
            f"FROM read_csv('{visits}') v JOIN read_csv('{payments}') t "
            "ON v.patient_id = t.person_id GROUP BY t.district"
        ).fetchall()
        plain = time.perf_counter() - plain

        alone = time.perf_counter()
        found = psi.intersect(
            ids(left, 0), ids(right, left - min(left, right) // 2), "resident-number"
        )
        alone = time.perf_counter() - alone
        node.close()

    print(f"\n{left:,} × {right:,} rows, {len(found):,} in common; load {load()}\n")
    print("| step | wall s | share |\n| --- | ---: | ---: |")
    for step, seconds in steps.items():
        print(f"| {step} | {seconds:.2f} | {seconds / wall:.0%} |")
    print(f"| plan, ledger, log, receipt | {rest:.2f} | {rest / wall:.0%} |")
    print(f"| **private join query, end to end** | **{wall:.2f}** | 100% |")
    print("\n| in the same run | wall s | private join × this |\n| --- | ---: | ---: |")
    print(
        f"| plain DuckDB join of the raw CSV files (no privacy) | {plain:.2f} "
        f"| {wall / plain:.1f}× |"
    )
    print(f"| `psi.intersect` of the same keys (PSI alone) | {alone:.2f} | {wall / alone:.2f}× |")
    print(
        f"epsilon spent {done.epsilon_spent:g}; peak RSS of this process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--left", type=int, default=1_000_000)
    parser.add_argument("--right", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000, help="small side (0: skip)")
    parser.add_argument("--large", type=int, default=10_000_000, help="large side")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load {load()}")
    run(args.left, args.right)
    if args.small:
        run(args.small, args.large)


if __name__ == "__main__":
    main()
