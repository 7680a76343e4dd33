"""What crosses a holder's boundary in a private join, and the exact answer it gives.

A recording vault keeps every operation sent to a holder and every result it sends
back. Nothing a holder receives can be compared with what it computes from its own
identifiers (the raw values, their group elements, or its own singly-blinded
tokens), and the matcher receives only doubly-blinded tokens and the query's own
attribute columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from tests.exchange.join_world import (
    CONSUMER,
    SQL,
    JoinWorld,
    Payment,
    Recording,
    Visit,
    exact_answers,
    payments_drawn,
    plain_join,
    priced,
    visits_drawn,
)

from entrepot.errors import QueryFailed
from entrepot.exchange import Exchange
from entrepot.exchange.coordinator import Coordinator
from entrepot.exchange.query import Queries
from entrepot.privacy.psi import TOKEN_BYTES, hash_to_group
from entrepot.standards.linkkeys import concept
from entrepot.vault import Blind, Blinded, LocalVault, Operation, Outcome, Reblind, Reblinded


def _tokens(data: bytes) -> set[bytes]:
    return {data[i : i + TOKEN_BYTES] for i in range(0, len(data), TOKEN_BYTES)}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[JoinWorld]:
    made = JoinWorld(tmp_path / "node")
    made.publish(
        [("AB-0001", "910101", "I"), ("AB0002", "910101", "I"), ("AB0003", "910102", "I")],
        [("AB0001", "910101", 10.0), ("AB0002", "910102", 5.0), ("AB0007", "910102", 7.0)],
    )
    yield made
    made.close()


def _recorded(world: JoinWorld) -> tuple[Queries, Recording]:
    exchange = Exchange(world.node)
    recording = Recording(LocalVault.of(world.node))
    coordinator = Coordinator(
        world.node,
        vault=recording,
        contracts=exchange.contracts,
        policies=exchange.policies,
        ledger=exchange.ledger,
    )
    return Queries(coordinator), recording


def test_no_message_carries_an_identifier_a_holder_could_recognise(world: JoinWorld) -> None:
    queries, recording = _recorded(world)
    consumer = Exchange(world.node).actor(CONSUMER)
    queries.run(consumer, SQL, epsilon=0.5)
    ids = ["AB-0001", "AB0001", "AB0002", "AB0003", "AB0007"]
    resident = concept("resident-number")
    canonical = {resident.canonicalize(i) for i in ids}
    points = {hash_to_group("resident-number", c) for c in canonical if c}
    singly: set[bytes] = set()
    blinded = [out for op, out in recording.sent if isinstance(out, Blinded)]
    reblinded = [out for op, out in recording.sent if isinstance(out, Reblinded)]
    assert len(blinded) == len(reblinded) == 2
    for out in blinded:
        tokens = _tokens(out.tokens.tokens)
        assert not tokens & points
        singly |= tokens
        # The attribute columns: the handle and what the answer reads, nothing else.
        assert set(out.attributes.column_names) <= {"handle", "district", "amount"}
        text = repr(out.attributes.to_pylist())
        assert not any(i in text for i in ids)
    for op, _ in recording.sent:
        if isinstance(op, Reblind):
            # A holder receives the other's tokens: never raw, never a group element it
            # could compute, never one blinded by its own key alone.
            tokens = _tokens(op.tokens.tokens)
            own = next(o for o2, o in recording.sent if isinstance(o2, Blind) and o2.ref == op.ref)
            assert isinstance(own, Blinded)
            assert not tokens & points
            assert not tokens & _tokens(own.tokens.tokens)
            assert not any(i.encode() in op.tokens.tokens for i in ids)
    for out in reblinded:
        doubly = _tokens(out.tokens.tokens)
        assert not doubly & points
        assert not doubly & singly
    blinds = [op for op, _ in recording.sent if isinstance(op, Blind)]
    assert all("patient_id" not in op.columns and "person_id" not in op.columns for op in blinds)


def test_each_join_draws_fresh_keys_so_tokens_of_two_joins_never_match(world: JoinWorld) -> None:
    queries, recording = _recorded(world)
    consumer = Exchange(world.node).actor(CONSUMER)
    queries.run(consumer, SQL, epsilon=0.5)
    first = [out for _, out in recording.sent if isinstance(out, Reblinded | Blinded)]
    recording.sent.clear()
    queries.run(consumer, SQL, epsilon=0.4)
    second = [out for _, out in recording.sent if isinstance(out, Reblinded | Blinded)]

    def all_tokens(outs: list[Any]) -> set[bytes]:
        return set().union(*(_tokens(o.tokens.tokens) for o in outs))

    assert all_tokens(first)
    assert not all_tokens(first) & all_tokens(second)


class _FailingSecondBlind(Recording):
    def run(self, operation: Operation, *, touched: Any) -> Outcome:
        if isinstance(operation, Blind) and any(isinstance(o, Blind) for o, _ in self.sent):
            raise RuntimeError("the second holder went away")
        return super().run(operation, touched=touched)


def test_a_join_that_fails_midway_leaves_no_holder_keeping_its_key(world: JoinWorld) -> None:
    exchange = Exchange(world.node)
    vault = LocalVault.of(world.node)
    failing = _FailingSecondBlind(vault)
    queries = Queries(
        Coordinator(
            world.node,
            vault=failing,
            contracts=exchange.contracts,
            policies=exchange.policies,
            ledger=exchange.ledger,
        )
    )
    with pytest.raises(QueryFailed):
        queries.run(exchange.actor(CONSUMER), SQL, epsilon=0.5)
    assert vault._joins == {}  # the first holder forgot its key


def test_a_person_with_many_rows_on_both_sides_is_bounded_across_the_join(
    tmp_path: Path,
) -> None:
    """4 visits × 5 payments make 20 pairs of rows for one person: bounded to R = 3."""
    world = JoinWorld(tmp_path / "node", rows=3)
    try:
        world.publish(
            [("AB0001", "910101", "I")] * 4 + [("AB0002", "910101", "I")],
            [("AB0001", "910101", 1.0)] * 5 + [("AB0002", "910102", 1.0)],
        )
        exchange = Exchange(world.node)
        sql = (
            "SELECT COUNT(*) AS pairs FROM riverside_hospitals.outpatient_visits v "
            "JOIN acme_pay.transactions t ON v.patient_id = t.person_id"
        )
        operation = priced(exchange, sql)
        [row] = operation.exact(exchange.vault).to_pylist()
        counted = next(q.name for q in operation.plan.plan.rewrite.quantities)
        assert row[counted] == pytest.approx(3 + 1)
        assert operation.plan.plan.scales[counted] > 0
    finally:
        world.close()


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(visits=visits_drawn, payments=payments_drawn)
def test_the_join_without_noise_equals_the_plain_join_of_the_raw_data(
    tmp_path_factory: pytest.TempPathFactory, visits: list[Visit], payments: list[Payment]
) -> None:
    world = JoinWorld(tmp_path_factory.mktemp("node") / "node")
    try:
        world.publish(visits, payments)
        exchange = Exchange(world.node)
        run = priced(exchange, SQL)
        got = exact_answers(run.plan.plan, run.exact(exchange.vault))
        want = plain_join(visits, payments)
        assert set(got) == set(want)
        for district, (people, pairs, paid) in want.items():
            assert got[district][0] == pytest.approx(people)
            assert got[district][1] == pytest.approx(pairs)
            assert got[district][2] == pytest.approx(paid)
    finally:
        world.close()
