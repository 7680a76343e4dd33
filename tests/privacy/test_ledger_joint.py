"""Reservations over two datasets: both debits or neither, and never past either cap.

A use that reads two datasets (a join) debits each one's grant budget and cap in one
transaction. Racing such reservations, from threads and from separate processes, on
SQLite and on PostgreSQL, must never overspend either dataset; a refusal on one must
leave the other untouched; and the reservation moves through its states as a whole.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from entrepot.errors import BudgetExhausted, Conflict, ContractViolation, InvalidInput
from entrepot.privacy.ledger import Debit, Reservation
from marketplace import Market, add_dataset, race_processes

SQL = (
    "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits JOIN riverside_hospitals.admissions"
)

# A worker process: waits for "go" on stdin, then reserves both datasets from several
# threads and prints how many reservations it got.
WORKER = """
import sys, threading
from entrepot.db import Database
from entrepot.errors import BudgetExhausted, ContractViolation
from entrepot.privacy.ledger import Debit, Ledger

url, consumer, first, second, threads, each = sys.argv[1:7]
ledger = Ledger(Database(url))
won = []

def run():
    for _ in range(int(each)):
        try:
            ledger.reserve(
                int(consumer), int(first), 1, "q", 0.1, also=[Debit(int(second), 1, 0.1)]
            )
        except (BudgetExhausted, ContractViolation):
            continue
        won.append(1)

print("ready", flush=True)
sys.stdin.readline()
workers = [threading.Thread(target=run) for _ in range(int(threads))]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(len(won), flush=True)
ledger.db.dispose()
"""


def second_dataset(market: Market, *, epsilon: float) -> int:
    """A second dataset of the same provider, granted to the market's consumer."""
    dataset_id = add_dataset(market.node, "riverside-hospitals", "admissions")
    request = market.contracts.request(
        market.consumer,
        "riverside-hospitals/admissions",
        purpose="public-health-surveillance",
        epsilon=epsilon,
        until=date(2026, 12, 31),
        actions=("aggregate-query",),
    )
    market.contracts.grant(market.provider, request.ref, epsilon=epsilon)
    return dataset_id


def reserve_both(market: Market, second: int, epsilon: float = 0.1) -> Reservation:
    assert market.consumer.org_id is not None
    return market.ledger.reserve(
        market.consumer.org_id,
        market.dataset_id,
        1,
        SQL,
        epsilon,
        also=[Debit(second, 1, epsilon)],
    )


def left(market: Market, dataset_id: int) -> float:
    [budget] = market.ledger.budgets(consumer_id=market.consumer.org_id, dataset_ids=[dataset_id])
    return budget.epsilon_left


def test_a_joint_reservation_writes_one_row_per_dataset(market: Market) -> None:
    market.grant(epsilon=1.0)
    second = second_dataset(market, epsilon=1.0)
    held = reserve_both(market, second, 0.25)
    entries = market.ledger.entries(consumer_id=market.consumer.org_id)
    assert [(e.id, e.dataset_id, e.epsilon, e.state) for e in entries] == [
        (h.entry_id, h.dataset_id, 0.25, "reserved") for h in held.held
    ]
    assert held.id == held.held[0].entry_id
    assert {h.dataset_id for h in held.held} == {market.dataset_id, second}
    assert left(market, market.dataset_id) == left(market, second) == pytest.approx(0.75)
    assert market.ledger.check() == []


def test_a_refusal_on_one_dataset_leaves_the_other_untouched(market: Market) -> None:
    market.grant(epsilon=1.0)
    second = second_dataset(market, epsilon=0.15)
    reserve_both(market, second)
    with pytest.raises(BudgetExhausted) as refused:
        reserve_both(market, second)
    assert refused.value.budget == "grant"
    assert left(market, market.dataset_id) == pytest.approx(0.9)
    assert left(market, second) == pytest.approx(0.05)
    market.ledger.set_cap(market.dataset_id, 0.12, actor="org:riverside-hospitals")
    with pytest.raises(BudgetExhausted) as capped:
        reserve_both(market, second, 0.05)
    assert capped.value.budget == "dataset"
    assert left(market, second) == pytest.approx(0.05)
    assert len(market.ledger.entries()) == 2
    assert market.ledger.check() == []


def test_a_dataset_without_a_grant_refuses_the_whole_reservation(market: Market) -> None:
    market.grant(epsilon=1.0)
    ungranted = add_dataset(market.node, "riverside-hospitals", "admissions")
    with pytest.raises(ContractViolation) as refused:
        reserve_both(market, ungranted)
    assert refused.value.clause == "grant"
    assert left(market, market.dataset_id) == pytest.approx(1.0)
    assert market.ledger.entries() == []


def test_the_same_dataset_twice_is_refused(market: Market) -> None:
    market.grant(epsilon=1.0)
    with pytest.raises(InvalidInput, match="same dataset twice"):
        reserve_both(market, market.dataset_id)
    assert market.ledger.entries() == []


def test_a_joint_reservation_is_released_touched_and_completed_whole(market: Market) -> None:
    market.grant(epsilon=1.0)
    second = second_dataset(market, epsilon=1.0)
    untouched = reserve_both(market, second, 0.5)
    market.ledger.release(untouched)
    assert left(market, market.dataset_id) == left(market, second) == pytest.approx(1.0)
    touched = reserve_both(market, second, 0.5)
    market.ledger.mark_touched(touched)
    with pytest.raises(Conflict, match="touched"):
        market.ledger.release(touched)
    market.ledger.complete(touched, rows_scanned=7)
    states = {e.id: e.state for e in market.ledger.entries()}
    assert [states[i] for i in untouched.entry_ids] == ["released", "released"]
    assert [states[i] for i in touched.entry_ids] == ["completed", "completed"]
    assert left(market, market.dataset_id) == left(market, second) == pytest.approx(0.5)
    assert market.ledger.check() == []


def test_threads_never_overspend_either_dataset(market: Market) -> None:
    market.grant(epsilon=1.0)
    second = second_dataset(market, epsilon=1.0)
    # The second dataset's cap binds first, at 6 reservations of 0.1 ε each.
    market.ledger.set_cap(second, 0.6, actor="org:riverside-hospitals")
    threads = 20
    start = threading.Barrier(threads)
    won: list[Reservation] = []
    lock = threading.Lock()

    def run(_: int) -> None:
        start.wait()
        for _ in range(200 // threads):
            try:
                held = reserve_both(market, second)
            except (BudgetExhausted, ContractViolation):
                continue
            with lock:
                won.append(held)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    assert len(won) == 6
    assert left(market, market.dataset_id) == pytest.approx(0.4)
    assert left(market, second) == pytest.approx(0.4)
    cap = market.ledger.cap(second)
    assert cap is not None
    assert cap.epsilon_left == 0
    assert len(market.ledger.entries()) == 12
    assert market.ledger.check() == []


@pytest.mark.slow
def test_processes_never_overspend_either_dataset(market: Market) -> None:
    market.grant(epsilon=1.0)
    second = second_dataset(market, epsilon=0.7)
    # The first dataset's cap and the second's grant: the grant binds at 7.
    market.ledger.set_cap(market.dataset_id, 0.9, actor="org:riverside-hospitals")
    args = [
        market.node.db.url,
        str(market.consumer.org_id),
        str(market.dataset_id),
        str(second),
        "5",
        "5",
    ]
    total = sum(int(out) for out in race_processes(WORKER, args))
    assert total == 7
    assert left(market, market.dataset_id) == pytest.approx(0.3)
    assert left(market, second) == pytest.approx(0.0)
    assert len(market.ledger.entries()) == 14
    assert market.ledger.check() == []
