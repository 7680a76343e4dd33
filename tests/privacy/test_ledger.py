from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.errors import BudgetExhausted, Conflict, ContractViolation, InvalidInput
from entrepot.privacy.ledger import NANO, Ledger, Reservation, price_cents, to_nano
from marketplace import Market

SQL = "SELECT district, COUNT(*) FROM riverside_hospitals.outpatient_visits GROUP BY district"


def reserve(market: Market, epsilon: float, **kwargs: object) -> Reservation:
    assert market.consumer.org_id is not None
    return market.ledger.reserve(
        market.consumer.org_id,
        market.dataset_id,
        1,
        SQL,
        epsilon,
        **kwargs,  # type: ignore[arg-type]
    )


def test_ten_reservations_of_a_tenth_exactly_fill_a_budget_of_one(market: Market) -> None:
    market.grant(epsilon=1.0)
    for _ in range(10):
        reserve(market, 0.1)
    with pytest.raises(BudgetExhausted) as refused:
        reserve(market, 0.1)
    assert refused.value.budget == "grant"
    [budget] = market.ledger.budgets(consumer_id=market.consumer.org_id)
    assert budget.epsilon_spent == pytest.approx(1.0)
    assert budget.epsilon_left == 0
    assert market.ledger.check() == []


def test_a_reservation_writes_who_what_and_how_much(market: Market) -> None:
    market.grant(epsilon=2.0, price_per_epsilon=50, price_per_query="1.50")
    market.ledger.set_cap(market.dataset_id, 10.0, delta=1e-6, actor="org:riverside-hospitals")
    held = reserve(market, 0.25, delta=1e-9, actor="account:analyst")
    [entry] = market.ledger.entries(consumer_id=market.consumer.org_id)
    assert (entry.id, entry.state, entry.version) == (held.id, "reserved", 1)
    assert entry.query_text == SQL
    assert entry.epsilon == 0.25
    assert entry.delta == 1e-9
    assert entry.actor == "account:analyst"
    assert entry.created_at == market.clock.now
    # 1.50 per query + 0.25 ε × 50 per ε = 14.00
    assert entry.price_cents == held.price_cents == 1400


def test_the_dataset_cap_binds_across_consumers_and_debits_nothing(market: Market) -> None:
    other = market.consumer_org("harbour-statistics")
    market.grant(epsilon=1.0)
    market.grant(other, epsilon=1.0)
    market.ledger.set_cap(market.dataset_id, 1.5, actor="org:riverside-hospitals")
    for _ in range(5):
        reserve(market, 0.2)
    assert other.org_id is not None
    for _ in range(2):
        market.ledger.reserve(other.org_id, market.dataset_id, 1, SQL, 0.2)
    before = market.ledger.budgets(consumer_id=other.org_id)[0]
    with pytest.raises(BudgetExhausted) as refused:
        market.ledger.reserve(other.org_id, market.dataset_id, 1, SQL, 0.2)
    assert refused.value.budget == "dataset"
    after = market.ledger.budgets(consumer_id=other.org_id)[0]
    assert after.epsilon_left == before.epsilon_left == pytest.approx(0.6)
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert (cap.epsilon_cap, cap.epsilon_left) == (1.5, pytest.approx(0.1))
    assert market.ledger.check() == []


def test_release_refunds_only_while_no_data_was_touched(market: Market) -> None:
    market.grant(epsilon=1.0, max_queries=3)
    untouched = reserve(market, 0.5)
    market.ledger.release(untouched)
    touched = reserve(market, 0.5)
    market.ledger.mark_touched(touched)
    with pytest.raises(Conflict, match="touched"):
        market.ledger.release(touched)
    completed = reserve(market, 0.25)
    market.ledger.complete(completed, rows_scanned=10)
    with pytest.raises(Conflict, match="completed"):
        market.ledger.release(completed)
    with pytest.raises(Conflict, match="released"):
        market.ledger.complete(untouched)
    [budget] = market.ledger.budgets(consumer_id=market.consumer.org_id)
    assert budget.epsilon_left == pytest.approx(0.25)
    assert budget.queries_used == 2
    assert market.ledger.check() == []


def test_a_reservation_untouched_for_an_hour_is_released_at_the_next_one(market: Market) -> None:
    market.grant(epsilon=1.0, max_queries=5)
    market.ledger.set_cap(market.dataset_id, 10.0, delta=1e-6, actor="org:riverside-hospitals")
    dead = reserve(market, 0.5, delta=1e-9)  # its process died before it read anything
    read = reserve(market, 0.25)
    market.ledger.mark_touched(read)  # its process died after reading: spent for good
    market.clock.advance(minutes=59)
    recent = reserve(market, 0.125)
    [budget] = market.ledger.budgets(consumer_id=market.consumer.org_id)
    assert budget.epsilon_left == pytest.approx(0.125)
    market.clock.advance(minutes=2)
    latest = reserve(market, 0.0625)
    states = {e.id: e.state for e in market.ledger.entries(consumer_id=market.consumer.org_id)}
    assert states == {
        dead.id: "released",
        read.id: "touched",
        recent.id: "reserved",
        latest.id: "reserved",
    }
    [budget] = market.ledger.budgets(consumer_id=market.consumer.org_id)
    assert budget.epsilon_left == pytest.approx(1 - 0.25 - 0.125 - 0.0625)
    assert budget.queries_used == 3
    cap = market.ledger.cap(market.dataset_id)
    assert cap is not None
    assert (cap.epsilon_left, cap.delta_left) == (pytest.approx(10 - 0.4375), pytest.approx(1e-6))
    # Had its process lived on, it could not read: its mark as touched is refused.
    with pytest.raises(Conflict, match="released"):
        market.ledger.mark_touched(dead)
    assert market.ledger.check() == []


def test_max_queries_is_enforced_when_reserving(market: Market) -> None:
    market.grant(epsilon=5.0, max_queries=2)
    reserve(market, 0.1)
    reserve(market, 0.1)
    with pytest.raises(ContractViolation) as refused:
        reserve(market, 0.1)
    assert refused.value.clause == "count"


def test_revoked_and_expired_grants_reserve_nothing(market: Market) -> None:
    grant = market.grant(epsilon=1.0, until=date(2026, 11, 30))
    reserve(market, 0.1)
    market.clock.advance(days=16)
    with pytest.raises(ContractViolation) as expired:
        reserve(market, 0.1)
    assert expired.value.clause == "period"
    market.clock.advance(days=-16)
    market.contracts.revoke(market.provider, grant.ref)
    with pytest.raises(ContractViolation) as revoked:
        reserve(market, 0.1)
    assert revoked.value.clause == "revoked"


def test_no_grant_means_no_reservation(market: Market) -> None:
    with pytest.raises(ContractViolation) as refused:
        reserve(market, 0.1)
    assert refused.value.clause == "grant"


def test_an_answer_is_recalled_byte_for_byte_only_by_its_consumer(market: Market) -> None:
    market.grant(epsilon=1.0)
    held = reserve(market, 0.1)
    answer = bytes(range(256)) * 3
    market.ledger.complete(held, rows_scanned=5, answer=(b"\x01" * 32, answer))
    assert market.consumer.org_id is not None
    assert market.ledger.recall(market.consumer.org_id, b"\x01" * 32) == answer
    assert market.ledger.recall(market.consumer.org_id, b"\x02" * 32) is None
    other = market.consumer_org("harbour-statistics")
    assert other.org_id is not None
    assert market.ledger.recall(other.org_id, b"\x01" * 32) is None


def test_a_cap_never_goes_below_what_was_spent(market: Market) -> None:
    market.grant(epsilon=3.0)
    reserve(market, 1.0)
    with pytest.raises(Conflict, match="already spent 1"):
        market.ledger.set_cap(market.dataset_id, 0.5, actor="org:riverside-hospitals")
    cap = market.ledger.set_cap(market.dataset_id, 1.5, actor="org:riverside-hospitals")
    assert (cap.epsilon_spent, cap.epsilon_left) == (1.0, 0.5)


@pytest.mark.parametrize("epsilon", [-0.1, float("nan"), float("inf")])
def test_nonsense_epsilon_is_refused(market: Market, epsilon: float) -> None:
    market.grant(epsilon=1.0)
    with pytest.raises(InvalidInput):
        reserve(market, epsilon)


@given(st.decimals(min_value=0, max_value=1000, places=9))
def test_nano_epsilon_is_exact_for_nine_decimals(value: object) -> None:
    assert to_nano(str(value)) == to_nano(str(value), round_up=False)
    assert to_nano(str(value)) == int(value * NANO)  # type: ignore[operator]


@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
)
def test_a_price_is_the_fixed_part_plus_rounded_epsilon_part(
    nano: int, per_query: int, per_epsilon: int
) -> None:
    price = price_cents(nano, per_query, per_epsilon)
    assert abs((price - per_query) - nano * per_epsilon / NANO) <= 0.5 + 1e-6


operation = st.tuples(
    st.sampled_from(["reserve", "touch", "complete", "release", "cap"]),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=10),
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, max_size=20))
def test_budgets_and_caps_always_equal_their_ledger_rows(
    market: Market, ops: list[tuple[str, int, int]]
) -> None:
    # Each example gets a consumer of its own; the invariant is global to the node.
    consumer = market.consumer_org(f"c-{len(market.ledger.entries())}-{len(ops)}-{id(ops)}")
    market.grant(consumer, epsilon=2.0, max_queries=15)
    assert consumer.org_id is not None
    ledger: Ledger = market.ledger
    held: list[Reservation] = []
    for kind, hundredths, pick in ops:
        try:
            if kind == "reserve":
                held.append(
                    ledger.reserve(consumer.org_id, market.dataset_id, 1, SQL, hundredths / 100)
                )
            elif kind == "cap":
                ledger.set_cap(market.dataset_id, hundredths / 4, actor="org:p")
            elif held:
                target = held[pick % len(held)]
                {
                    "touch": ledger.mark_touched,
                    "release": ledger.release,
                    "complete": ledger.complete,
                }[kind](target)
        except (BudgetExhausted, ContractViolation, Conflict):
            pass
    assert ledger.check() == []
    [budget] = ledger.budgets(consumer_id=consumer.org_id)
    assert budget.epsilon_granted - budget.epsilon_spent == pytest.approx(budget.epsilon_left)
