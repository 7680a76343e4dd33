"""Cross-tenant matrix of the domain layer: who may read and change which contract.

"hidden" means NotFound, so a refusal never reveals that the object exists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from entrepot.errors import Conflict, Forbidden, NotFound
from entrepot.exchange.accounts import LOCAL, Actor
from entrepot.vault.providers import add_provider
from marketplace import Market, add_dataset

PURPOSE = "public-health-surveillance"


def parties(market: Market) -> dict[str, Actor]:
    add_provider(market.node.db, "valley-clinics", "Valley Clinics")
    add_dataset(market.node, "valley-clinics", "visits")
    _, operator = market.accounts.create(LOCAL, "ops", "operator")
    _, auditor = market.accounts.create(LOCAL, "watchdog", "auditor")
    return {
        "owner": market.consumer,
        "other-consumer": market.consumer_org("harbour-statistics"),
        "provider": market.provider,
        "other-provider": market.accounts.actor("valley-clinics"),
        "auditor": market.accounts.authenticate(auditor.secret),
        "operator": market.accounts.authenticate(operator.secret),
    }


OPERATIONS: dict[str, Callable[[Market, Actor], object]] = {
    "show-request": lambda m, a: m.contracts.show(a, "REQ-2"),
    "show-grant": lambda m, a: m.contracts.show(a, "GRANT-1"),
    "export-odrl": lambda m, a: m.contracts.odrl(a, "GRANT-1"),
    "refuse": lambda m, a: m.contracts.refuse(a, "REQ-2"),
    "revoke": lambda m, a: m.contracts.revoke(a, "GRANT-1"),
}

# Expected outcome per (operation, party): "ok", "hidden" (NotFound) or "forbidden".
EXPECTED = {
    "show-request": dict.fromkeys(["owner", "provider", "operator"], "ok"),
    "show-grant": dict.fromkeys(["owner", "provider", "operator"], "ok"),
    "export-odrl": dict.fromkeys(["owner", "provider", "operator"], "ok"),
    "refuse": {"owner": "forbidden", "provider": "ok", "operator": "forbidden"},
    "revoke": {"owner": "forbidden", "provider": "ok", "operator": "ok"},
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_party_reaches_only_its_own_contracts(market: Market, operation: str) -> None:
    actors = parties(market)
    market.grant()  # REQ-1 → GRANT-1
    market.contracts.request(  # REQ-2, pending
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=1, until=date(2026, 12, 31)
    )
    outcomes = {}
    for name, actor in actors.items():
        try:
            OPERATIONS[operation](market, actor)
            outcomes[name] = "ok"
        except Conflict:
            # Let through, but the first allowed party already changed the state.
            outcomes[name] = "ok"
        except NotFound:
            outcomes[name] = "hidden"
        except Forbidden:
            outcomes[name] = "forbidden"
    assert outcomes == {name: EXPECTED[operation].get(name, "hidden") for name in actors}


def test_listings_hold_only_the_partys_own_contracts(market: Market) -> None:
    actors = parties(market)
    market.grant()
    seen = {name: len(market.contracts.grants(actor)) for name, actor in actors.items()}
    assert seen == {
        "owner": 1,
        "other-consumer": 0,
        "provider": 1,
        "other-provider": 0,
        "auditor": 0,
        "operator": 1,
    }
