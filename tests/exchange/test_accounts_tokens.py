from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from entrepot.errors import Conflict, Forbidden, NotFound, Unauthorized
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import (
    LOCAL,
    Account,
    Accounts,
    ApiToken,
    Authenticated,
    Organization,
    Scope,
    Unverified,
)
from entrepot.schemas.accounts import AccountOut
from entrepot.transparency import make_entry
from marketplace import Market, race_threads


def test_a_token_is_shown_once_and_stored_only_as_an_argon2id_hash(market: Market) -> None:
    info, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    assert info.org == "city-health-bureau"
    assert token.secret.startswith(f"ent_{token.info.token_id}_")
    assert token.secret not in repr(token)
    with market.node.db.read() as session:
        stored = session.scalar(
            select(ApiToken.secret_hash).where(ApiToken.token_id == token.info.token_id)
        )
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert token.secret.split("_", 2)[2] not in stored
    actor = market.accounts.authenticate(token.secret)
    assert (actor.account, actor.role, actor.org_slug) == (
        "analyst",
        "consumer",
        "city-health-bureau",
    )


def test_a_wrong_secret_with_a_real_token_id_is_refused(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    last = token.secret[-1]
    forged = token.secret[:-1] + ("A" if last != "A" else "B")
    with pytest.raises(Unauthorized) as refused:
        market.accounts.authenticate(forged)
    assert forged not in str(refused.value.to_dict())
    assert token.info.token_id not in str(refused.value.to_dict())


def test_revocation_takes_effect_at_once_in_this_process(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    market.accounts.authenticate(token.secret)  # now cached
    market.accounts.revoke_token(market.consumer, token.info.token_id)
    with pytest.raises(Unauthorized):
        market.accounts.authenticate(token.secret)


def test_an_expired_token_is_refused_even_when_cached(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    market.accounts.authenticate(token.secret)
    market.clock.advance(days=market.node.settings.token_ttl_days, seconds=1)
    with pytest.raises(Unauthorized):
        market.accounts.authenticate(token.secret)


def test_a_provider_account_is_linked_to_its_vault_provider(market: Market) -> None:
    info, token = market.accounts.create(
        LOCAL, "riverside-admin", "provider", org="riverside-hospitals"
    )
    assert (info.org, info.org_name) == ("riverside-hospitals", "Riverside Hospitals")
    actor = market.accounts.authenticate(token.secret)
    assert actor.provider_id is not None
    assert actor.provider_id == market.provider.provider_id
    with pytest.raises(NotFound) as missing:
        market.accounts.create(LOCAL, "ghost-admin", "provider", org="ghost-clinics")
    assert "entrepot provider add ghost-clinics" in missing.value.hint


def test_roles_do_not_mix_within_an_organization(market: Market) -> None:
    with pytest.raises(Conflict, match="is a consumer"):
        market.accounts.create(LOCAL, "mole", "auditor", org="city-health-bureau")


def test_only_administrators_create_accounts_and_see_everyone(market: Market) -> None:
    with pytest.raises(Forbidden):
        market.accounts.create(market.consumer, "friend", "consumer")
    _, operator_token = market.accounts.create(LOCAL, "ops", "operator")
    operator = market.accounts.authenticate(operator_token.secret)
    market.accounts.create(operator, "harbour-statistics", "consumer")
    everyone = {a.name for a in market.accounts.list_accounts(operator)}
    assert {"ops", "harbour-statistics", "city-health-bureau"} <= everyone
    assert [a.name for a in market.accounts.list_accounts(market.consumer)] == [
        "city-health-bureau"
    ]


def test_accounts_are_listed_with_their_active_tokens_and_bodies_as_the_api_dumps(
    market: Market,
) -> None:
    _, first = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    market.accounts.issue_token(market.consumer, "analyst")
    market.accounts.issue_token(market.consumer, "analyst")
    market.accounts.revoke_token(market.consumer, first.info.token_id)
    listed = market.accounts.list_accounts(market.consumer)
    assert [(a.name, a.active_tokens) for a in listed] == [
        ("analyst", 2),
        ("city-health-bureau", 1),
    ]
    assert market.accounts.count_accounts(market.consumer) == 2
    assert [a.name for a in market.accounts.list_accounts(LOCAL, limit=1, offset=1)] == [
        "city-health-bureau"
    ]
    for info in listed:
        assert json.dumps(info.to_body()) == json.dumps(AccountOut.of(info).model_dump(mode="json"))


def test_one_organization_cannot_revoke_anothers_tokens(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "harbour-statistics", "consumer")
    with pytest.raises(NotFound):
        market.accounts.revoke_token(market.consumer, token.info.token_id)
    market.accounts.authenticate(token.secret)


def test_a_new_token_works_beside_the_old_one(market: Market) -> None:
    _, first = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    second = market.accounts.issue_token(market.consumer, "analyst")
    assert first.info.token_id != second.info.token_id
    for token in (first, second):
        assert market.accounts.authenticate(token.secret).account == "analyst"
    listed = market.accounts.tokens(market.consumer, "analyst")
    assert [t.token_id for t in listed] == [first.info.token_id, second.info.token_id]


def test_a_token_keeps_its_scope_verified_cached_listed_and_in_its_sessions(
    market: Market,
) -> None:
    _, full = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    sharing = market.accounts.issue_token(market.consumer, "analyst", scope=Scope.SHARING)
    assert (full.info.scope, sharing.info.scope) == (Scope.FULL, Scope.SHARING)
    for issued in (full, sharing):
        found = market.accounts.recall(issued.secret)
        assert isinstance(found, Unverified)
        verified = market.accounts.verify(found, issued.secret)
        assert verified == Authenticated(found.actor, issued.info.scope)
        # Cached now: the same actor, and the scope its row holds.
        assert market.accounts.recall(issued.secret) == verified
    session = market.accounts.open_session(sharing.secret, lifetime=timedelta(hours=1))
    recalled = market.accounts.recall(session.secret)
    assert isinstance(recalled, Authenticated)
    assert session.info.scope == recalled.scope == Scope.SHARING
    listed = market.accounts.tokens(market.consumer, "analyst")
    assert [(t.token_id, t.scope) for t in listed] == [
        (full.info.token_id, Scope.FULL),
        (sharing.info.token_id, Scope.SHARING),
    ]
    assert market.accounts.revoke_token(market.consumer, sharing.info.token_id).scope == "sharing"
    with pytest.raises(Unauthorized):
        market.accounts.recall(sharing.secret)


def _differences(market: Market) -> list[tuple[str, str, str]]:
    found = Exchange(market.node).reconcile().differences
    return [(d.what, d.subject, d.problem) for d in found]


def _account_ref(market: Market, name: str) -> str:
    """The account's reference, as its listing shows the operator."""
    [ref] = [a.ref for a in market.accounts.list_accounts(LOCAL) if a.name == name]
    return ref


def test_the_log_states_the_scope_of_every_token_issued(market: Market) -> None:
    _, full = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    sharing = market.accounts.issue_token(market.consumer, "analyst", scope=Scope.SHARING)
    another = market.accounts.issue_token(market.consumer, "analyst")
    logged = [
        (entry["change"], entry["token"], entry["scope"])
        for _, entry in market.node.log.search(kind="account")
        if entry["account"] == _account_ref(market, "analyst")
    ]
    assert logged == [
        ("created", full.info.ref, "full"),
        ("token_issued", sharing.info.ref, "sharing"),
        ("token_issued", another.info.ref, "full"),
    ]
    assert _differences(market) == []


def test_a_token_whose_scope_is_not_the_one_logged_is_named(market: Market) -> None:
    market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    sharing = market.accounts.issue_token(market.consumer, "analyst", scope=Scope.SHARING)
    with market.node.db.write() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_id == sharing.info.token_id)
            .values(scope=Scope.FULL.value)
        )
    assert _differences(market) == [
        ("token", sharing.info.ref, "logged as issued sharing, but node.db holds it full")
    ]


def test_an_entry_issuing_a_token_node_db_never_held_is_named(market: Market) -> None:
    market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    ref = _account_ref(market, "analyst")
    market.node.log.append(
        make_entry(
            "account", "local", account=ref, change="token_issued", token="TOKEN-999", scope="full"
        )
    )
    assert _differences(market) == [
        ("token", "TOKEN-999", "logged as issued, but node.db has no such API token")
    ]


def test_an_entry_written_before_scopes_states_a_full_token(market: Market) -> None:
    market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    full = market.accounts.issue_token(market.consumer, "analyst")
    sharing = market.accounts.issue_token(market.consumer, "analyst", scope=Scope.SHARING)
    for issued in (full, sharing):
        market.node.log.append(
            make_entry(
                "account", "local", account="analyst", change="token_issued", token=issued.info.ref
            )
        )
    assert _differences(market) == [
        ("token", sharing.info.ref, "logged as issued full, but node.db holds it sharing")
    ]


def test_the_log_names_an_account_by_reference_never_by_its_name(market: Market) -> None:
    _, first = market.accounts.create(LOCAL, "jane-roe", "consumer", org="city-health-bureau")
    second = market.accounts.issue_token(market.consumer, "jane-roe", scope=Scope.SHARING)
    market.accounts.revoke_token(market.consumer, first.info.token_id)
    everything = [market.node.log.entry_bytes(i) for i in range(market.node.log.size)]
    assert not [entry for entry in everything if b"jane" in entry]
    logged = [
        (entry["change"], entry["account"], entry["token"])
        for _, entry in market.node.log.search(kind="account")
    ]
    ref = _account_ref(market, "jane-roe")
    assert logged[-3:] == [
        ("created", ref, first.info.ref),
        ("token_issued", ref, second.info.ref),
        ("token_revoked", ref, first.info.ref),
    ]
    assert _differences(market) == []


def test_an_account_logged_by_name_before_references_still_reconciles(market: Market) -> None:
    """An account created by an earlier version: its entries name it, as they stay."""
    with market.node.db.write() as session:
        org = session.scalar(
            select(Organization.id).where(Organization.slug == "city-health-bureau")
        )
        assert org is not None
        session.add(
            Account(name="jane-roe", org_id=org, role="consumer", created_at=market.clock())
        )
    ref = _account_ref(market, "jane-roe")
    assert _differences(market) == [
        ("account", ref, "created in node.db, logged as created 0 times")
    ]
    market.node.log.append(
        make_entry(
            "account",
            "local",
            account="jane-roe",
            change="created",
            role="consumer",
            org="city-health-bureau",
        )
    )
    issued = market.accounts.issue_token(market.consumer, "jane-roe")
    market.accounts.revoke_token(market.consumer, issued.info.token_id)
    assert _differences(market) == []
    market.node.log.append(
        make_entry("account", "local", account=ref, change="created", role="consumer")
    )
    assert _differences(market) == [
        ("account", ref, "created in node.db, logged as created 2 times")
    ]


def test_portal_sessions_owe_the_log_no_entry(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    ended, _ = (
        market.accounts.open_session(token.secret, lifetime=timedelta(hours=8)) for _ in range(2)
    )
    market.accounts.close_session(ended.secret)
    assert _differences(market) == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.text(max_size=80),
        st.from_regex(r"ent_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", fullmatch=True),
    )
)
def test_any_other_string_is_refused_with_one_input_free_message(
    market: Market, garbage: str
) -> None:
    with pytest.raises(Unauthorized) as refused:
        market.accounts.authenticate(garbage)
    with pytest.raises(Unauthorized) as reference:
        market.accounts.authenticate("not a token")
    # Nothing in the refusal depends on what was sent, so nothing of it is echoed.
    assert refused.value.to_dict() == reference.value.to_dict()


def test_racing_creations_of_one_account_give_one_account_and_clean_conflicts(
    market: Market,
) -> None:
    outcomes = race_threads(lambda: market.accounts.create(LOCAL, "twin", "consumer"), Conflict, 6)
    assert outcomes == ["done"] + ["refused"] * 5
    assert [a.name for a in market.accounts.list_accounts(LOCAL)].count("twin") == 1


def _another_worker(market: Market) -> Accounts:
    """The accounts as another process of the node sees them: nothing cached."""
    return Accounts(market.node.db, market.node.settings, clock=market.clock, log=market.node.log)


def test_a_closed_session_is_refused_by_every_worker_and_its_api_token_lives_on(
    market: Market,
) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    session = market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    other = _another_worker(market)
    for accounts in (market.accounts, other):
        assert accounts.authenticate(session.secret).account == "analyst"
    market.accounts.close_session(session.secret)
    for accounts in (market.accounts, other, _another_worker(market)):
        with pytest.raises(Unauthorized):
            accounts.authenticate(session.secret)
        assert accounts.authenticate(token.secret).account == "analyst"


def test_a_closed_session_stays_refused_where_it_was_cached_after_the_next_sign_in(
    market: Market,
) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    ended = market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    other = _another_worker(market)
    assert other.authenticate(ended.secret).account == "analyst"
    market.accounts.close_session(ended.secret)
    # Signing in again deletes the ended session's row and writes the new one, which
    # SQLite may number as the row it replaces.
    fresh = market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    with pytest.raises(Unauthorized):
        other.authenticate(ended.secret)
    assert other.authenticate(fresh.secret).account == "analyst"


def test_revoking_the_api_token_ends_its_sessions(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    sessions = [
        market.accounts.open_session(token.secret, lifetime=timedelta(hours=8)) for _ in range(2)
    ]
    market.accounts.authenticate(sessions[0].secret)  # cached here; the other is not elsewhere
    market.accounts.revoke_token(market.consumer, token.info.token_id)
    for accounts in (market.accounts, _another_worker(market)):
        for session in sessions:
            with pytest.raises(Unauthorized):
                accounts.authenticate(session.secret)


def test_a_session_never_outlives_its_api_token_nor_its_lifetime(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    short = market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    long = market.accounts.open_session(token.secret, lifetime=timedelta(days=10_000))
    assert long.info.expires_at == token.info.expires_at
    market.clock.advance(hours=8, seconds=1)
    with pytest.raises(Unauthorized):
        market.accounts.authenticate(short.secret)
    assert market.accounts.authenticate(long.secret).account == "analyst"


def test_sessions_are_not_listed_and_a_sign_out_never_revokes_an_api_token(
    market: Market,
) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    session = market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    listed = market.accounts.tokens(market.consumer, "analyst")
    assert [t.token_id for t in listed] == [token.info.token_id]
    assert market.accounts.count_tokens(market.consumer, "analyst") == 1
    analyst = next(a for a in market.accounts.list_accounts(LOCAL) if a.name == "analyst")
    assert analyst.active_tokens == 1
    market.accounts.close_session(token.secret)
    market.accounts.close_session("not a token")
    assert market.accounts.authenticate(token.secret).account == "analyst"
    with pytest.raises(Unauthorized):
        market.accounts.open_session(session.secret, lifetime=timedelta(hours=8))
    with pytest.raises(Unauthorized):
        market.accounts.open_session("ent_000000000000_" + "A" * 43, lifetime=timedelta(hours=8))


def test_ended_sessions_are_deleted_when_the_account_opens_another(market: Market) -> None:
    _, token = market.accounts.create(LOCAL, "analyst", "consumer", org="city-health-bureau")
    ended = market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    market.accounts.close_session(ended.secret)
    market.accounts.open_session(token.secret, lifetime=timedelta(hours=8))
    with market.node.db.read() as session:
        rows = session.scalars(
            select(ApiToken.token_id).where(ApiToken.parent_id.is_not(None))
        ).all()
    assert ended.info.token_id not in rows
    assert len(rows) == 1
