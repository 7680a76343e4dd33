"""Numbers and dates past what the exchange can store or compute with: refused by name
before anything is written, on either database (a 64-bit column overflows on SQLite
and PostgreSQL alike)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.errors import InvalidInput
from entrepot.exchange.accounts import LOCAL
from entrepot.privacy import parse_policy, price
from entrepot.privacy.ledger import to_atto, to_nano
from entrepot.standards import get
from entrepot.vault.providers import add_provider, list_providers
from marketplace import Market

PURPOSE = "public-health-surveillance"
HUGE = 10**30
INT64 = 2**63


def test_an_epsilon_price_count_or_id_too_large_is_refused_naming_it(market: Market) -> None:
    asked = {"purpose": PURPOSE, "until": date(2026, 12, 31)}
    with pytest.raises(InvalidInput, match="ε must be a finite number from 0 to 1,000,000,000,"):
        market.contracts.request(market.consumer, market.dataset, epsilon=HUGE, **asked)
    assert market.contracts.requests(market.provider) == []

    request = market.contracts.request(market.consumer, market.dataset, epsilon=3, **asked)
    for option, message in (
        ({"epsilon": 1e30}, "ε must be a finite number from 0"),
        ({"max_queries": HUGE}, "must be from 1 to 1,000,000,000"),
        ({"price_per_query": HUGE}, "price per query must be an amount from 0 to 1,000,000 "),
        ({"price_per_epsilon": HUGE}, "price per epsilon must be an amount from 0"),
    ):
        with pytest.raises(InvalidInput, match=message):
            market.contracts.grant(market.provider, request.ref, **option)  # type: ignore[arg-type]
    assert market.ledger.budgets(consumer_id=market.consumer.org_id) == []
    for ref in ("REQ-" + "9" * 30, "GRANT-" + "9" * 20):
        with pytest.raises(InvalidInput, match="is not a"):
            market.contracts.show(market.provider, ref)

    granted = market.contracts.grant(
        market.provider, request.ref, max_queries=10**9, price_per_epsilon=Decimal(10**6)
    )
    assert (granted.max_queries, granted.price_per_epsilon) == (10**9, Decimal(10**6))


@given(st.decimals(min_value=0, allow_nan=False, allow_infinity=False))
def test_an_epsilon_or_delta_is_stored_within_64_bits_or_refused(value: Decimal) -> None:
    for convert, most in ((to_nano, 10**9), (to_atto, 1)):
        for round_up in (True, False):
            if value > most:
                with pytest.raises(InvalidInput, match="must be a finite number from 0"):
                    convert(value, round_up=round_up)
            else:
                assert 0 <= convert(value, round_up=round_up) < INT64


def test_a_date_a_month_or_an_epsilon_past_what_the_exchange_computes_is_refused(
    market: Market,
) -> None:
    asked = {"purpose": PURPOSE, "epsilon": 1}
    with pytest.raises(InvalidInput, match="past the last day a contract may end"):
        market.contracts.request(market.consumer, market.dataset, until=date.max, **asked)
    assert market.contracts.requests(market.provider) == []
    for month in ("0000-01", "9999-12", "1969-12"):
        with pytest.raises(InvalidInput, match="is not a month from 1970 to 2999"):
            market.metering.invoice(market.consumer, month)
    policy = parse_policy({}, get("health.visit"))
    for tiny in (1e-320, 5e-324, 1e-10, True):
        with pytest.raises(InvalidInput, match="ε must be a finite number of at least 1e-09"):
            price(policy, tiny)
    assert price(policy, 1e-9)[0] == 1e-9


def test_a_text_longer_than_its_field_holds_is_refused_by_the_service(market: Market) -> None:
    asked = {"purpose": PURPOSE, "until": date(2026, 12, 31), "epsilon": 1.0}
    with pytest.raises(InvalidInput, match="the note has 2,001 characters, more than the 2,000"):
        market.contracts.request(market.consumer, market.dataset, note="n" * 2001, **asked)
    assert market.contracts.requests(market.provider) == []
    request = market.contracts.request(market.consumer, market.dataset, note="n" * 2000, **asked)
    with pytest.raises(InvalidInput, match="the reason has 2,001 characters"):
        market.contracts.refuse(market.provider, request.ref, "r" * 2001)
    assert market.contracts.show(market.provider, request.ref).state == "requested"
    with pytest.raises(InvalidInput, match="the organization name has 201 characters"):
        market.accounts.create(LOCAL, "long-org", "consumer", org_name="o" * 201)
    with pytest.raises(InvalidInput, match="the provider name has 201 characters"):
        add_provider(market.node.db, "long-provider", "p" * 201)
    assert [p.slug for p in list_providers(market.node.db)] == ["riverside-hospitals"]
