"""The budget bar: 200 concurrent reservations never spend past a budget or a cap.

Each reservation asks 0.1 ε. A budget of 1.0 must let exactly 10 through, from threads
and from separate processes, on SQLite and on PostgreSQL, and the ledger must add up.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from entrepot.errors import BudgetExhausted, ContractViolation
from entrepot.exchange.accounts import Actor
from entrepot.privacy.ledger import Ledger
from marketplace import Market, race_processes

SQL = "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits"

# A worker process: waits for "go" on stdin, then reserves from several threads and
# prints how many reservations each consumer got.
WORKER = """
import sys, threading
from collections import Counter
from entrepot.db import Database
from entrepot.errors import BudgetExhausted, ContractViolation
from entrepot.privacy.ledger import Ledger

url, dataset, consumers, threads, each = sys.argv[1:6]
ledger = Ledger(Database(url))
consumers = [int(c) for c in consumers.split(",")]
won = Counter()
lock = threading.Lock()

def run(index):
    for attempt in range(int(each)):
        consumer = consumers[(index + attempt) % len(consumers)]
        try:
            ledger.reserve(consumer, int(dataset), 1, "SELECT 1", 0.1)
        except (BudgetExhausted, ContractViolation):
            continue
        with lock:
            won[consumer] += 1

print("ready", flush=True)
sys.stdin.readline()
workers = [threading.Thread(target=run, args=(i,)) for i in range(int(threads))]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(",".join(f"{c}:{n}" for c, n in won.items()), flush=True)
ledger.db.dispose()
"""


def hammer(
    ledger: Ledger, dataset_id: int, consumers: list[Actor], threads: int = 20
) -> Counter[int]:
    """200 reservations of 0.1 ε from ``threads`` threads, started together."""
    ids = [c.org_id for c in consumers if c.org_id is not None]
    start = threading.Barrier(threads)
    won: Counter[int] = Counter()
    lock = threading.Lock()

    def run(index: int) -> None:
        start.wait()
        for attempt in range(200 // threads):
            consumer = ids[(index + attempt) % len(ids)]
            try:
                ledger.reserve(consumer, dataset_id, 1, SQL, 0.1)
            except (BudgetExhausted, ContractViolation):
                continue
            with lock:
                won[consumer] += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return won


def spent(market: Market, consumer: Actor) -> float:
    [budget] = market.ledger.budgets(consumer_id=consumer.org_id)
    return budget.epsilon_spent


def test_threads_never_overspend_a_budget(market: Market) -> None:
    market.grant(epsilon=1.0)
    won = hammer(market.ledger, market.dataset_id, [market.consumer])
    assert sum(won.values()) == 10
    assert spent(market, market.consumer) == pytest.approx(1.0)
    assert len(market.ledger.entries()) == 10
    assert market.ledger.check() == []


def test_threads_never_overspend_the_dataset_cap(market: Market) -> None:
    consumers = [market.consumer] + [market.consumer_org(f"bureau-{i}") for i in range(3)]
    for consumer in consumers:
        market.grant(consumer, epsilon=1.0)
    market.ledger.set_cap(market.dataset_id, 1.0, actor="org:riverside-hospitals")
    won = hammer(market.ledger, market.dataset_id, consumers)
    assert sum(won.values()) == 10
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert cap.epsilon_left == 0
    assert sum(spent(market, c) for c in consumers) == pytest.approx(1.0)
    assert market.ledger.check() == []


@pytest.mark.slow
def test_processes_never_overspend_budgets_or_the_cap(market: Market) -> None:
    other = market.consumer_org("harbour-statistics")
    market.grant(epsilon=1.0)
    market.grant(other, epsilon=1.0)
    # Two budgets of 1.0 under a cap of 1.5: the cap binds first, at 15 reservations.
    market.ledger.set_cap(market.dataset_id, 1.5, actor="org:riverside-hospitals")
    ids = ",".join(str(c.org_id) for c in (market.consumer, other))
    args = [market.node.db.url, str(market.dataset_id), ids, "5", "10"]
    won: Counter[int] = Counter()
    for out in race_processes(WORKER, args):
        for pair in filter(None, out.split(",")):
            consumer, count = pair.split(":")
            won[int(consumer)] += int(count)
    assert sum(won.values()) == 15
    assert max(won.values()) <= 10
    assert spent(market, market.consumer) + spent(market, other) == pytest.approx(1.5)
    assert len(market.ledger.entries()) == 15
    assert market.ledger.check() == []
