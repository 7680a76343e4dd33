from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.errors import InvalidInput, NotFound
from entrepot.exchange.metering import month_bounds
from entrepot.schemas.usage import InvoiceOut
from marketplace import Market

SQL = "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits"


def use(market: Market, epsilon: float, end: str = "complete", rows: int = 1000) -> None:
    assert market.consumer.org_id is not None
    held = market.ledger.reserve(market.consumer.org_id, market.dataset_id, 1, SQL, epsilon)
    if end == "complete":
        market.ledger.complete(held, rows_scanned=rows)
    elif end == "release":
        market.ledger.release(held)
    elif end == "touch":
        market.ledger.mark_touched(held)


def test_an_invoice_bills_completed_uses_of_its_month_only(market: Market) -> None:
    market.grant(epsilon=3, price_per_epsilon=50, price_per_query="0.10")
    use(market, 0.5)
    use(market, 0.25, rows=500)
    use(market, 0.5, end="release")
    use(market, 0.5, end="touch")  # spent, failed after reading: ε gone, nothing billed
    market.clock.now = datetime(2026, 12, 2, 9, 0)
    use(market, 0.1)
    invoice = market.metering.invoice(market.consumer, "2026-11")
    assert (invoice.party, invoice.role, invoice.currency) == (
        "city-health-bureau",
        "consumer",
        "CNY",
    )
    [line] = invoice.lines
    assert (line.grant, line.dataset, line.action) == (
        "GRANT-1",
        "riverside-hospitals/outpatient-visits",
        "aggregate-query",
    )
    # Rows scanned are a version's exact row count: the provider's figure, not the consumer's.
    assert (line.uses, line.epsilon, line.rows_scanned) == (2, 0.75, None)
    assert market.metering.invoice(market.provider, "2026-11").rows_scanned == 1500
    # 2 × 0.10 + 0.75 ε × 50 = 37.70
    assert invoice.amount == Decimal("37.70")
    december = market.metering.invoice(market.consumer, "2026-12")
    assert (december.uses, december.amount) == (1, Decimal("5.10"))


def test_the_provider_sees_the_same_figures_as_revenue(market: Market) -> None:
    market.grant(epsilon=3, price_per_epsilon=50)
    use(market, 0.5)
    consumer = market.metering.invoice(market.consumer, "2026-11")
    provider = market.metering.invoice(market.provider, "2026-11")
    assert provider.role == "provider"
    assert provider.lines == tuple(replace(line, rows_scanned=1000) for line in consumer.lines)


def test_csv_and_json_carry_the_same_figures(market: Market) -> None:
    market.grant(epsilon=3, price_per_epsilon=50)
    use(market, 0.5)
    use(market, 0.2)
    invoice = market.metering.invoice(market.consumer, "2026-11")
    rows = list(csv.DictReader(io.StringIO(invoice.to_csv())))
    assert [r["grant"] for r in rows] == ["GRANT-1", "total"]
    body = invoice.to_dict()
    assert rows[-1]["amount"] == body["total"]["amount"] == "35.00"
    assert float(rows[-1]["epsilon"]) == body["total"]["epsilon"] == pytest.approx(0.7)
    assert int(rows[0]["uses"]) == body["lines"][0]["uses"] == 2


def test_an_invoice_s_body_is_the_api_s(market: Market) -> None:
    market.grant(epsilon=3, price_per_epsilon=50)
    use(market, 0.5)
    for party in (market.consumer, market.provider):
        body = market.metering.invoice(party, "2026-11").to_dict()
        dumped = InvoiceOut.model_validate(body).model_dump(mode="json")
        assert json.dumps(body) == json.dumps(dumped)


def test_nobody_reads_another_organizations_usage(market: Market) -> None:
    other = market.consumer_org("harbour-statistics")
    with pytest.raises(NotFound):
        market.metering.invoice(other, "2026-11", party="city-health-bureau")


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "november", ""])
def test_a_month_is_yyyy_mm(month: str) -> None:
    with pytest.raises(InvalidInput):
        month_bounds(month)


def test_december_ends_at_the_new_year() -> None:
    assert month_bounds("2026-12") == (datetime(2026, 12, 1), datetime(2027, 1, 1))


uses = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=30),  # ε in hundredths
        st.sampled_from(["complete", "complete", "release", "touch"]),
        st.integers(min_value=0, max_value=2),  # month offset from November
        st.integers(min_value=0, max_value=10**6),  # rows scanned
    ),
    max_size=12,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(uses)
def test_invoice_figures_always_equal_the_sum_of_ledger_rows(
    market: Market, plan: list[tuple[int, str, int, int]]
) -> None:
    market.clock.now = datetime(2026, 11, 1, 0, 0)
    if not market.contracts.grants(market.consumer, active=True):
        market.grant(
            epsilon=100, until=date(2027, 12, 31), price_per_epsilon="12.34", price_per_query="0.07"
        )
    for hundredths, end, offset, rows in plan:
        market.clock.now = (
            datetime(2026, 11 + offset, 3, 12, 0) if offset < 2 else datetime(2027, 1, 3, 12, 0)
        )
        use(market, hundredths / 100, end=end, rows=rows)
    for month in ("2026-11", "2026-12", "2027-01"):
        start, end_ = month_bounds(month)
        rows_ = market.ledger.entries(
            consumer_id=market.consumer.org_id,
            states=["completed"],
            finished_from=start,
            finished_before=end_,
        )
        invoice = market.metering.invoice(market.consumer, month)
        assert invoice.uses == len(rows_)
        assert sum(line.epsilon_nano for line in invoice.lines) == sum(
            r.epsilon_nano for r in rows_
        )
        assert invoice.rows_scanned is None
        revenue = market.metering.invoice(market.provider, month)
        assert revenue.rows_scanned == sum(r.rows_scanned or 0 for r in rows_)
        assert invoice.amount == Decimal(sum(r.price_cents for r in rows_)) / 100
