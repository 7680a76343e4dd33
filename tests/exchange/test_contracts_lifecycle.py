from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from entrepot.errors import Conflict, ContractViolation, Forbidden, InvalidInput, NotFound
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts, GrantInfo, RequestInfo, covers, purposes
from entrepot.schemas.access import GrantOut, RequestOut
from marketplace import Market

PURPOSE = "public-health-surveillance"


def test_request_then_grant_records_every_transition_with_who_and_when(market: Market) -> None:
    request = market.contracts.request(
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=3, until=date(2026, 12, 31)
    )
    assert (request.ref, request.state, request.epsilon) == ("REQ-1", "requested", 3.0)
    assert [r.ref for r in market.contracts.requests(market.provider, pending=True)] == ["REQ-1"]
    market.clock.advance(hours=2)
    grant = market.contracts.grant(
        market.provider, "REQ-1", epsilon=2, max_queries=100, price_per_epsilon=50
    )
    assert (grant.ref, grant.state, grant.epsilon, grant.max_queries) == (
        "GRANT-1",
        "granted",
        2.0,
        100,
    )
    assert grant.price_per_epsilon == Decimal(50)
    assert grant.valid_until == date(2026, 12, 31)
    assert market.contracts.requests(market.provider, pending=True) == []
    shown = market.contracts.show(market.consumer, "REQ-1")
    assert isinstance(shown, RequestInfo)
    assert [(t.subject, t.from_state, t.to_state, t.actor) for t in shown.history] == [
        ("REQ-1", None, "requested", "org:city-health-bureau"),
        ("REQ-1", "requested", "granted", "org:riverside-hospitals"),
        ("GRANT-1", None, "granted", "org:riverside-hospitals"),
    ]
    assert shown.history[1].at == market.clock.now
    [budget] = market.ledger.budgets(consumer_id=market.consumer.org_id)
    assert (budget.epsilon_granted, budget.max_queries) == (2.0, 100)


def test_a_refused_request_can_not_be_granted(market: Market) -> None:
    request = market.contracts.request(
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=1, until=date(2026, 12, 31)
    )
    refused = market.contracts.refuse(market.provider, request.ref, reason="not our mandate")
    assert refused.state == "refused"
    assert refused.history[-1].reason == "not our mandate"
    with pytest.raises(Conflict, match="already refused"):
        market.contracts.grant(market.provider, request.ref)


def test_authorize_passes_a_valid_use_and_narrower_purposes(market: Market) -> None:
    market.grant(purpose="public-interest")
    grant = market.contracts.authorize(market.consumer, market.dataset, "aggregate-query", PURPOSE)
    assert grant.ref == "GRANT-1"
    assert (
        market.contracts.authorize(
            market.consumer, market.dataset_id, "aggregate-query", "public-interest"
        ).ref
        == "GRANT-1"
    )


@pytest.mark.parametrize(
    ("setup", "action", "purpose", "clause"),
    [
        ("none", "aggregate-query", PURPOSE, "grant"),
        ("revoke", "aggregate-query", PURPOSE, "revoked"),
        ("expire", "aggregate-query", PURPOSE, "period"),
        ("grant", "release-download", PURPOSE, "action"),
        ("grant", "aggregate-query", "market-analysis", "purpose"),
        ("spend", "aggregate-query", PURPOSE, "count"),
    ],
)
def test_authorize_names_the_clause_that_refuses(
    market: Market, setup: str, action: str, purpose: str, clause: str
) -> None:
    if setup != "none":
        grant = market.grant(max_queries=1, until=date(2026, 11, 30))
        assert market.consumer.org_id is not None
        if setup == "revoke":
            market.contracts.revoke(market.provider, grant.ref, reason="misuse")
        elif setup == "expire":
            market.clock.advance(days=30)
        elif setup == "spend":
            market.ledger.reserve(market.consumer.org_id, market.dataset_id, 1, "q", 0.1)
    with pytest.raises(ContractViolation) as refused:
        market.contracts.authorize(market.consumer, market.dataset, action, purpose)
    assert refused.value.clause == clause
    assert refused.value.to_dict()["error"]["clause"] == clause


def test_requests_and_grants_are_listed_as_shown_with_bodies_as_the_api_dumps(
    market: Market,
) -> None:
    market.grant(max_queries=10, price_per_query=Decimal("12.50"), price_per_epsilon=100)
    market.clock.advance(seconds=1.5)
    market.contracts.request(
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=0.5, until=date(2026, 12, 31)
    )
    requests = market.contracts.requests(market.consumer)
    grants = market.contracts.grants(market.provider)
    assert [(r.ref, r.state, r.grant_id) for r in requests] == [
        ("REQ-1", "granted", 1),
        ("REQ-2", "requested", None),
    ]
    assert [g.ref for g in grants] == ["GRANT-1"]
    # A listing is each one's view without its history.
    shown = [market.contracts.show(market.provider, r.ref) for r in requests]
    assert requests == shown
    assert grants == [market.contracts.show(market.consumer, "GRANT-1")]
    assert market.contracts.count_requests(market.provider, pending=True) == 1
    assert market.contracts.count_grants(market.consumer, active=True) == 1
    for request in [*requests, *shown]:
        assert isinstance(request, RequestInfo)
        dumped = RequestOut.model_validate(request.to_dict()).model_dump(mode="json", by_alias=True)
        assert json.dumps(request.to_body()) == json.dumps(dumped)
    shown_grant = market.contracts.show(market.consumer, "GRANT-1")
    for grant in [*grants, shown_grant]:
        assert isinstance(grant, GrantInfo)
        dumped = GrantOut.model_validate(grant.to_dict()).model_dump(mode="json", by_alias=True)
        assert json.dumps(grant.to_body()) == json.dumps(dumped)
    assert grants[0].to_body()["price_per_query"] == "12.5"


def test_an_expired_grant_becomes_expired_dated_at_its_end(market: Market) -> None:
    grant = market.grant(until=date(2026, 11, 30))
    market.clock.advance(days=40)
    [listed] = market.contracts.grants(market.consumer)
    assert listed.state == "expired"
    shown = market.contracts.show(market.consumer, grant.ref)
    assert isinstance(shown, GrantInfo)
    last = shown.history[-1]
    assert (last.from_state, last.to_state, last.actor) == ("granted", "expired", "system")
    assert last.at.date() == date(2026, 12, 1)
    assert market.ledger.budgets(consumer_id=market.consumer.org_id) == []


def test_only_the_datasets_provider_decides(market: Market) -> None:
    request = market.contracts.request(
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=1, until=date(2026, 12, 31)
    )
    with pytest.raises(Forbidden):
        market.contracts.grant(market.consumer, request.ref)
    other = market.consumer_org("harbour-statistics")
    with pytest.raises(NotFound):
        market.contracts.grant(other, request.ref)
    with pytest.raises(NotFound):
        market.contracts.show(other, request.ref)
    assert market.contracts.requests(other) == []


def test_a_second_active_grant_for_the_same_pair_is_a_conflict(market: Market) -> None:
    first = market.grant()
    second = market.contracts.request(
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=1, until=date(2026, 12, 31)
    )
    with pytest.raises(Conflict, match=first.ref):
        market.contracts.grant(market.provider, second.ref)
    market.contracts.revoke(market.provider, first.ref)
    assert market.contracts.grant(market.provider, second.ref).state == "granted"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purpose": "curiosity"}, "unknown purpose"),
        ({"epsilon": 0}, "above 0"),
        ({"until": date(2026, 1, 1)}, "empty or over"),
        ({"actions": ("copy-everything",)}, "unknown or no actions"),
    ],
)
def test_bad_requests_are_refused_with_a_hint(
    market: Market, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"purpose": PURPOSE, "epsilon": 1, "until": date(2026, 12, 31)}
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=message) as refused:
        market.contracts.request(market.consumer, market.dataset, **args)  # type: ignore[arg-type]
    assert refused.value.hint


def test_providers_do_not_request_access(market: Market) -> None:
    with pytest.raises(Forbidden):
        market.contracts.request(
            market.provider, market.dataset, purpose=PURPOSE, epsilon=1, until=date(2026, 12, 31)
        )


def test_grant_exports_as_an_odrl_agreement(market: Market) -> None:
    market.grant(
        epsilon=2,
        max_queries=100,
        price_per_epsilon=50,
        price_per_query="0.50",
        actions=("aggregate-query", "private-join"),
    )
    document = json.loads(json.dumps(market.contracts.odrl(market.consumer, "GRANT-1")))
    assert document["@context"][0] == "http://www.w3.org/ns/odrl.jsonld"
    assert document["@type"] == "Agreement"
    base = market.contracts.settings.base_url
    assert document["uid"] == f"{base}v1/access/grants/GRANT-1/odrl"
    assert document["assigner"]["uid"] == f"{base}v1/providers#riverside-hospitals"
    assert document["assignee"]["uid"] == "urn:entrepot:org:city-health-bureau"
    actions = [p["action"] for p in document["permission"]]
    assert actions == ["aggregate", "entrepot:privateJoin"]
    permission = document["permission"][0]
    dataset = f"{base}v1/catalog/datasets/riverside-hospitals/outpatient-visits"
    assert permission["target"] == dataset
    operands = {(c["leftOperand"], c["operator"]) for c in permission["constraint"]}
    assert {("purpose", "isA"), ("count", "lteq"), ("entrepot:epsilon", "lteq")} <= operands
    assert ("dateTime", "lteq") in operands
    duties = permission["duty"]
    assert duties[0]["action"] == "attribute"
    amounts = sorted(d["action"][0]["refinement"][0]["rightOperand"]["@value"] for d in duties[1:])
    assert amounts == ["0.50", "50.00"]


def test_purpose_vocabulary_is_a_forest_with_known_parents() -> None:
    known = purposes()
    assert PURPOSE in known
    for purpose in known.values():
        assert purpose.broader is None or purpose.broader in known
        assert covers(purpose.id, purpose.id)
    assert covers("public-interest", PURPOSE)
    assert not covers(PURPOSE, "public-interest")


def test_contract_and_account_changes_reach_the_transparency_log(market: Market) -> None:
    log = market.node.log
    contracts = Contracts(market.node.db, market.node.settings, clock=market.clock, log=log)
    accounts = Accounts(market.node.db, market.node.settings, clock=market.clock, log=log)
    # The market's own setup is logged too; this test reads what it changes.
    first = log.size
    _, token = accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    request = contracts.request(
        market.consumer, market.dataset, purpose=PURPOSE, epsilon=2, until=date(2026, 11, 30)
    )
    contracts.grant(market.provider, request.ref, max_queries=10)
    market.clock.advance(days=30)
    contracts.expire_due()
    entries = [entry for _, entry in log.entries(first)]
    kinds = [(e["kind"], e["change"], e["actor"]) for e in entries]
    # A request gives no access: it stays between the parties, out of the public log.
    assert kinds == [
        ("account", "created", "local"),
        ("grant", "granted", "org:riverside-hospitals"),
        ("grant", "expired", "system"),
    ]
    assert entries[1]["dataset"] == market.dataset
    assert entries[1]["epsilon"] == "2"
    assert entries[1]["grant"] == "GRANT-1"
    assert (entries[1]["max_queries"], entries[1]["valid_until"]) == (10, "2026-11-30")
    assert "request" not in entries[1]
    assert token.secret not in json.dumps(entries)
