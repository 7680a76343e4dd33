from __future__ import annotations

import pytest

from entrepot.errors import Forbidden, NotFound
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.budgets import Budgets
from entrepot.vault.providers import add_provider
from marketplace import Market, add_dataset


def budgets(market: Market) -> Budgets:
    return Budgets(market.node.db, market.ledger)


def test_each_party_sees_only_the_budgets_it_is_party_to(market: Market) -> None:
    other = market.consumer_org("harbour-statistics")
    market.grant(epsilon=1.0)
    market.grant(other, epsilon=2.0)
    add_provider(market.node.db, "valley-clinics", "Valley Clinics")
    add_dataset(market.node, "valley-clinics", "visits")
    stranger = market.accounts.actor("valley-clinics")
    view = budgets(market)
    assert [(b.consumer, b.epsilon_granted) for b in view.visible(market.consumer)] == [
        ("city-health-bureau", 1.0)
    ]
    assert [b.consumer for b in view.visible(other)] == ["harbour-statistics"]
    assert [b.consumer for b in view.visible(market.provider)] == [
        "city-health-bureau",
        "harbour-statistics",
    ]
    assert view.visible(stranger) == []
    assert len(view.visible(LOCAL)) == 2


def test_only_the_datasets_provider_sets_its_cap(market: Market) -> None:
    view = budgets(market)
    with pytest.raises(NotFound):
        view.set_cap(market.consumer, market.dataset, 100)
    _, token = market.accounts.create(LOCAL, "ops", "operator")
    with pytest.raises(Forbidden):
        view.set_cap(market.accounts.authenticate(token.secret), market.dataset, 100)
    cap = view.set_cap(market.provider, market.dataset, 4)
    assert (cap.dataset, cap.epsilon_cap, cap.epsilon_left) == (market.dataset, 4.0, 4.0)
    shown = view.cap(market.consumer, market.dataset)
    assert shown == cap


def test_the_view_agrees_with_the_ledger_after_spending(market: Market) -> None:
    market.grant(epsilon=1.0, max_queries=5)
    assert market.consumer.org_id is not None
    for _ in range(3):
        held = market.ledger.reserve(market.consumer.org_id, market.dataset_id, 1, "q", 0.2)
        market.ledger.complete(held)
    [budget] = budgets(market).visible(market.consumer)
    assert (budget.epsilon_spent, budget.epsilon_left) == (pytest.approx(0.6), pytest.approx(0.4))
    assert (budget.queries_used, budget.max_queries) == (3, 5)
    assert budget.cap is not None
    assert budget.cap.epsilon_spent == pytest.approx(0.6)
    assert budget.grant == "GRANT-1"
