"""Budget ledger: reservation latency, throughput, and overspend under a race.

Compares, in one run and on the same metadata database:

- entrepot: ``Ledger.reserve`` + ``Ledger.complete`` (two write transactions; the
  reservation debits the grant and the dataset cap with conditional UPDATEs and writes
  the ledger row);
- naive: the "check in one transaction, debit in another" ledger the design warns
  about (one SELECT transaction, then one UPDATE + INSERT transaction);
- floor: one single-row INSERT transaction, the least any durable write costs here.

Then ``--threads`` threads race for a 1.0 ε budget at 0.1 ε each: entrepot must
admit exactly 10, and the table shows how many the naive ledger lets through.

    python benchmarks/bench_ledger.py --reservations 300 --threads 64
    python benchmarks/bench_ledger.py --reservations 300 --threads 64 --postgres
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from datetime import date
from pathlib import Path

from sqlalchemy import Column, Float, Integer, MetaData, Table, Text, insert, select, update

from entrepot.db import Database
from entrepot.errors import BudgetExhausted
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.privacy.ledger import Ledger
from entrepot.settings import Settings
from entrepot.vault.models import Dataset
from entrepot.vault.providers import add_provider, get_provider

SQL = "SELECT district, COUNT(*) FROM riverside_hospitals.outpatient_visits GROUP BY district"


def seed(node: Node, epsilon: float) -> tuple[int, int]:
    """A provider, a dataset, a consumer with a grant of ``epsilon``; returns the ids."""
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    with node.db.write() as session:
        provider = get_provider(session, "riverside-hospitals")
        dataset = Dataset(
            provider_id=provider.id,
            slug="outpatient-visits",
            title="Outpatient visits",
            description="",
            standard="health.visit",
            schema={},
        )
        session.add(dataset)
        session.flush()
        dataset_id = dataset.id
    accounts = Accounts(node.db, node.settings, log=node.log)
    accounts.create(LOCAL, "city-health-bureau", "consumer")
    consumer = accounts.actor("city-health-bureau")
    contracts = Contracts(node.db, node.settings, log=node.log)
    request = contracts.request(
        consumer,
        "riverside-hospitals/outpatient-visits",
        purpose="public-health-surveillance",
        epsilon=epsilon,
        until=date(2099, 12, 31),
    )
    contracts.grant(LOCAL, request.ref)
    Ledger(node.db).set_cap(dataset_id, epsilon, actor="bench")
    assert consumer.org_id is not None
    return consumer.org_id, dataset_id


# The baselines' own tables, apart from entrepot's schema.
_BASELINE = MetaData()
NAIVE_BUDGET = Table(
    "naive_budget", _BASELINE, Column("id", Integer, primary_key=True), Column("left_", Float)
)
NAIVE_LEDGER = Table(
    "naive_ledger",
    _BASELINE,
    Column("id", Integer, primary_key=True),
    Column("q", Text),
    Column("eps", Float),
)
FLOOR = Table("floor_rows", _BASELINE, Column("id", Integer, primary_key=True), Column("q", Text))


class Naive:
    """Check in one transaction, debit in another: the race the design measured."""

    def __init__(self, db: Database, epsilon: float) -> None:
        self.db = db
        _BASELINE.drop_all(db.engine)
        _BASELINE.create_all(db.engine)
        with db.write() as session:
            session.execute(insert(NAIVE_BUDGET).values(id=1, left_=epsilon))

    def reserve(self, epsilon: float) -> bool:
        with self.db.read() as session:
            left = session.scalar(select(NAIVE_BUDGET.c.left_).where(NAIVE_BUDGET.c.id == 1))
        if left is None or left < epsilon - 1e-12:
            return False
        with self.db.write() as session:
            session.execute(
                update(NAIVE_BUDGET)
                .where(NAIVE_BUDGET.c.id == 1)
                .values(left_=NAIVE_BUDGET.c.left_ - epsilon)
            )
            session.execute(insert(NAIVE_LEDGER).values(q=SQL, eps=epsilon))
        return True


def floor_insert(db: Database) -> Callable[[], None]:
    def insert_one() -> None:
        with db.write() as session:
            session.execute(insert(FLOOR).values(q=SQL))

    return insert_one


def timed(step: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def race(reserve: Callable[[], bool], threads: int) -> tuple[int, float]:
    """``threads`` threads, 10 attempts each at once; returns (admitted, seconds)."""
    barrier = threading.Barrier(threads)
    admitted = [0] * threads

    def run(index: int) -> None:
        barrier.wait()
        for _ in range(10):
            with suppress(BudgetExhausted):
                admitted[index] += bool(reserve())

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted), time.perf_counter() - start


def bench(url: str, home: Path, reservations: int, threads: int) -> list[list[str]]:
    node = Node.init(Settings(home=home, db=url))
    try:
        consumer, dataset = seed(node, epsilon=reservations * 2.0)
        ledger = Ledger(node.db)

        def cycle() -> None:
            held = ledger.reserve(consumer, dataset, 1, SQL, 0.5)
            ledger.complete(held, rows_scanned=1)

        naive = Naive(node.db, reservations * 1.0)
        floor_step = floor_insert(node.db)
        ours = timed(cycle, reservations)
        reserve_only = timed(lambda: ledger.reserve(consumer, dataset, 1, SQL, 0.5), reservations)
        theirs = timed(lambda: naive.reserve(0.5), reservations)
        floor = timed(floor_step, reservations)
        assert ledger.check() == []

        # The race: a fresh grant of exactly 1.0 ε.
        racer = Node.init(Settings(home=home.with_name(home.name + "-race"), db=race_url(url)))
        try:
            consumer, dataset = seed(racer, epsilon=1.0)
            race_ledger = Ledger(racer.db)
            ours_in, ours_s = race(
                lambda: bool(race_ledger.reserve(consumer, dataset, 1, SQL, 0.1)), threads
            )
            assert ours_in == 10, ours_in
            assert race_ledger.check() == []
            racing_naive = Naive(racer.db, 1.0)
            theirs_in, theirs_s = race(lambda: racing_naive.reserve(0.1), threads)
        finally:
            racer.close()
    finally:
        node.close()

    def ms(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q < 100 else 0.0

    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    rows = []
    for name, values in (
        ("entrepot reserve+complete", ours),
        ("entrepot reserve only", reserve_only),
        ("naive check-then-debit", theirs),
        ("floor: one INSERT txn", floor),
    ):
        rows.append(
            [
                dialect,
                name,
                f"{statistics.median(values) * 1000:.2f}",
                f"{ms(values, 99):.2f}",
                f"{len(values) / sum(values):.0f}",
                f"{statistics.median(values) / statistics.median(floor):.2f}",
            ]
        )
    rows.append(
        [
            dialect,
            f"race, {threads} threads x 10 x 0.1 ε on 1.0",
            f"entrepot admitted {ours_in} in {ours_s:.2f} s",
            f"naive admitted {theirs_in} in {theirs_s:.2f} s",
            "",
            f"overspend x{theirs_in / 10:.1f} vs x1.0",
        ]
    )
    return rows


_RACE_URLS: dict[str, str] = {}


def race_url(url: str) -> str:
    return _RACE_URLS.get(url, url.replace("bench_ledger.db", "bench_race.db"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reservations", "--rows", type=int, default=200)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway cluster")
    args = parser.parse_args()
    rows: list[list[str]] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rows += bench(
            f"sqlite:///{tmp / 'bench_ledger.db'}", tmp / "home", args.reservations, args.threads
        )
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from pg import Cluster, find_bindir

            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL binaries are absent: run `make system-deps`")
            cluster = stack.enter_context(Cluster.running(bindir))
            main_db = stack.enter_context(cluster.database())
            _RACE_URLS[main_db] = stack.enter_context(cluster.database())
            rows += bench(main_db, tmp / "pg-home", args.reservations, args.threads)
    head = ["db", "what", "p50 ms", "p99 ms", "per s (1 thread)", "p50 / floor"]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *rows]:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
