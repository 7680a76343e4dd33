"""Private joins asked with odd inputs: each is answered, or refused under its rule,
logged naming both datasets, and charged exactly as priced on both sides or not at all."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.exchange.join_world import CONSUMER, PAYMENTS, POLICY, VISITS, JoinWorld

from entrepot.client.local import LocalClient
from entrepot.errors import EntrepotError, NotFound, PolicyViolation
from entrepot.exchange import Exchange
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.settings import Settings
from entrepot.standards import get
from entrepot.vault import OnError, PublishRequest, add_provider
from entrepot.vault.local import LocalVault

FIRMS = "acme-registry/firms"
_NANO = 1e-9 + 1e-15
SQL = (
    "SELECT COUNT(DISTINCT v.patient_id) AS people "
    "FROM riverside_hospitals.outpatient_visits v "
    "JOIN acme_pay.transactions t ON v.patient_id = t.person_id"
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[JoinWorld]:
    made = JoinWorld(tmp_path / "node")
    made.publish(
        [("AB0001", "910101", "I"), ("AB0002", "910102", "I")],
        [("AB0001", "910101", 3.0), ("AB0008", "910101", 1.0)],
    )
    yield made
    made.close()


def _spent(exchange: Exchange) -> dict[int, float]:
    consumer = exchange.actor(CONSUMER)
    return {
        b.dataset: b.epsilon_spent for b in exchange.ledger.budgets(consumer_id=consumer.org_id)
    }


def _last_join(world: JoinWorld) -> dict[str, Any]:
    return [e for _, e in world.node.log.entries() if e.get("kind") == "join"][-1]


def _add_firms(world: JoinWorld) -> None:
    """A registry of firms, whose only link key is a firm number, joinable with visits
    by both policies and granted to the consumer."""
    add_provider(world.node.db, "acme-registry", "Acme Registry")
    raw = world.home.parent / "firms.csv"
    raw.write_text(
        ",".join(get("org.registry").field_names)
        + "\n91110000MA01ABCD1X,C,910100,small,2001-02-03,12\n",
        encoding="utf-8",
    )
    with raw.open("rb") as data:
        LocalVault.of(world.node).publish(
            PublishRequest(
                provider="acme-registry",
                standard=get("org.registry"),
                title="Firms",
                on_error=OnError.REJECT,
                filename="rows.csv",
                force=True,
            ),
            data,
        )
    accounts = world.accounts
    policies = Policies(world.node)
    registry = accounts.actor("acme-registry")
    policies.set(registry, FIRMS, POLICY.format(other=VISITS, rows=10), where="test")
    both = f"payments.transaction, {FIRMS}"
    hospital = accounts.actor("riverside-hospitals")
    policies.set(hospital, VISITS, POLICY.format(other=both, rows=10), where="test")
    contracts = Contracts(world.node.db, world.node.settings, log=world.node.log)
    request = contracts.request(
        accounts.actor(CONSUMER),
        FIRMS,
        purpose="public-health-surveillance",
        epsilon=5.0,
        until=date.today() + timedelta(days=30),
        actions=("private-join",),
    )
    contracts.grant(registry, request.ref, epsilon=5.0)


def test_an_overlap_with_an_unknown_dataset_is_refused_and_logged_naming_both(
    world: JoinWorld,
) -> None:
    exchange = Exchange(world.node)
    client = LocalClient(exchange, exchange.actor(CONSUMER))
    before = _spent(exchange)
    with pytest.raises(NotFound) as refused:
        client.join_overlap(VISITS, "acme-pay/nothing", epsilon=0.5)
    assert "acme-pay/nothing" in refused.value.message
    entry = _last_join(world)
    assert (entry["outcome"], entry["rule"]) == ("refused", "unknown_dataset")
    assert entry["datasets"] == [VISITS, "acme-pay/nothing"]
    assert _spent(exchange) == before


def test_an_overlap_without_a_shared_link_key_is_refused_and_logged_naming_both(
    world: JoinWorld,
) -> None:
    _add_firms(world)
    exchange = Exchange(world.node)
    client = LocalClient(exchange, exchange.actor(CONSUMER))
    before = _spent(exchange)
    with pytest.raises(PolicyViolation) as refused:
        client.join_overlap(VISITS, FIRMS, epsilon=0.5)
    assert refused.value.rule == "link_key"
    assert refused.value.hint
    entry = _last_join(world)
    assert (entry["outcome"], entry["rule"]) == ("refused", "link_key")
    assert entry["datasets"] == [VISITS, FIRMS]
    assert _spent(exchange) == before


def test_an_overlap_of_a_dataset_with_itself_is_refused_and_logged(world: JoinWorld) -> None:
    exchange = Exchange(world.node)
    client = LocalClient(exchange, exchange.actor(CONSUMER))
    with pytest.raises(PolicyViolation) as refused:
        client.join_overlap(PAYMENTS, PAYMENTS, epsilon=0.5)
    assert refused.value.rule == "self_join"
    assert _last_join(world)["outcome"] == "refused"
    assert not any(_spent(exchange).values())


_EPSILONS = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-9, 1e-320, 5e-324, 1.0, 1e9, math.inf, -math.inf, math.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(epsilon=_EPSILONS)
def test_any_epsilon_is_spent_on_both_sides_as_priced_or_not_at_all(
    world: JoinWorld, epsilon: float
) -> None:
    exchange = Exchange(world.node)
    before = _spent(exchange)
    refused: EntrepotError | None = None
    try:
        result = exchange.queries.run(exchange.actor(CONSUMER), SQL, epsilon=epsilon)
    except EntrepotError as error:
        refused = error
    after = _spent(exchange)
    if refused is not None:
        assert refused.code in {"invalid_input", "policy_violation"}, refused
        assert after == before
        return
    charged = [after[ref] - before[ref] for ref in before]
    assert len(charged) == 2
    each = 0.0 if result.repeated else epsilon
    # The ledger counts whole nano-ε and rounds a cost up, never down.
    assert all(each - 1e-12 <= c <= each + _NANO for c in charged), (each, charged)
    assert result.epsilon_spent == pytest.approx(2 * each, abs=2 * _NANO)


@pytest.mark.parametrize("extra", [0, 1], ids=["at the limit", "one row past it"])
def test_psi_max_rows_is_read_on_the_version_not_on_what_the_where_keeps(
    tmp_path: Path, extra: int
) -> None:
    made = JoinWorld(tmp_path / "node")
    payments = [("AB0001", "910101", 3.0), ("AB0008", "910102", 1.0)]
    made.publish(
        [("AB0001", "910101", "I"), ("AB0002", "910102", "I")],
        payments + [("AB0009", "910102", 1.0)] * extra,
    )
    made.close()
    node = Node.open(Settings(home=made.home, token_hash_memory_kib=1024, psi_max_rows=2))
    try:
        exchange = Exchange(node)
        before = _spent(exchange)
        # The filter keeps one row of each side, whatever the versions hold.
        narrow = SQL + " WHERE v.district = '910101' AND t.district = '910101'"
        if extra:
            with pytest.raises(PolicyViolation, match="holds more rows than a private join"):
                exchange.queries.run(exchange.actor(CONSUMER), narrow, epsilon=0.5)
            assert _spent(exchange) == before
            joins = [e for _, e in node.log.entries() if e.get("kind") == "join"]
            assert (joins[-1]["outcome"], joins[-1]["rule"]) == ("refused", "psi_max_rows")
        else:
            answered = exchange.queries.run(exchange.actor(CONSUMER), narrow, epsilon=0.5)
            assert answered.epsilon_spent == pytest.approx(1.0, abs=1e-8)
    finally:
        node.close()
