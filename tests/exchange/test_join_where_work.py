"""A private join blinds the same keys whatever its WHERE keeps, and answers the same.

Blinding, reblinding and matching cost time per key, and a join runs longer than its
latency floor: were the keys blinded those of the rows a WHERE keeps, a join's
duration would tell the consumer how many rows pass an arbitrary filter. Each holder
blinds every distinct well-formed link key of its version instead, and sends the
columns of the rows its WHERE keeps only, so the work is the versions' and the answer
is the plain join's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from tests.exchange.join_world import (
    CONSUMER,
    JoinWorld,
    Payment,
    Recording,
    Visit,
    exact_answers,
    priced,
)

from entrepot.exchange import Exchange
from entrepot.exchange.coordinator import Coordinator
from entrepot.exchange.query import Queries
from entrepot.standards.linkkeys import concept
from entrepot.vault import Blinded, LocalVault, Reblind

# Eight visits of five people (one written two ways, one on two rows) and a malformed
# key (the standard's pattern allows it, the concept has no canonical form for it);
# half the rows are of diagnosis group I, half in each district of the payments.
VISITS: list[Visit] = [
    ("AB-0001", "910101", "I"),
    ("AB0001", "910102", "II"),
    ("AB0002", "910101", "I"),
    ("AB0003", "910102", "II"),
    ("AB0004", "910101", "I"),
    ("AB0004", "910103", "II"),
    ("A-B-C", "910101", "I"),
    ("AB0005", "910102", "II"),
]
PAYMENTS: list[Payment] = [
    ("AB0001", "910101", 10.0),
    ("AB0001", "910102", 20.0),
    ("AB0002", "910102", 5.0),
    ("AB0003", "910101", 7.0),
    ("AB0004", "910102", 3.5),
    ("AB0006", "910101", 1.25),
]
# Each keeps no row, half the rows, or every row of each side.
WHERES = {
    "none": "v.diagnosis_group = 'III' AND t.district = '910103'",
    "half": "v.diagnosis_group = 'I' AND t.district = '910101'",
    "all": "v.diagnosis_group IN ('I', 'II') AND t.district IN ('910101', '910102')",
}
SQL = (
    "SELECT t.district, COUNT(DISTINCT v.patient_id) AS people, COUNT(*) AS pairs, "
    "SUM(t.amount) AS paid FROM riverside_hospitals.outpatient_visits v "
    "JOIN acme_pay.transactions t ON v.patient_id = t.person_id "
    "WHERE {where} GROUP BY t.district"
)


def _key(value: str) -> str | None:
    return concept("resident-number").canonicalize(value)


class Counting(Recording):
    """A recording vault that counts what each Blind and Reblind carried."""

    def blinded(self) -> list[tuple[int, int]]:
        """Per Blind in order: the tokens its holder sent, and the rows of its columns."""
        return [
            (len(out.tokens), out.attributes.num_rows)
            for _, out in self.sent
            if isinstance(out, Blinded)
        ]

    def reblinded(self) -> list[int]:
        """Per Reblind in order: the tokens a holder received from the other."""
        return [len(op.tokens) for op, _ in self.sent if isinstance(op, Reblind)]


def _raw() -> duckdb.DuckDBPyConnection:
    """The raw rows in plain tables, each with its canonical key (NULL when malformed)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (k TEXT, district TEXT, diagnosis_group TEXT)")
    con.execute("CREATE TABLE t (k TEXT, district TEXT, amount DOUBLE)")
    con.executemany("INSERT INTO v VALUES (?, ?, ?)", [(_key(p), d, g) for p, d, g in VISITS])
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(_key(p), d, a) for p, d, a in PAYMENTS])
    return con


def _plain(where: str) -> dict[str, tuple[float, float, float]]:
    """The query over the raw rows in plain SQL, joined on canonical keys."""
    rows = (
        _raw()
        .execute(
            "SELECT t.district, COUNT(DISTINCT v.k), COUNT(*), SUM(t.amount) "
            f"FROM v JOIN t ON v.k = t.k WHERE {where} GROUP BY t.district"
        )
        .fetchall()
    )
    return {d: (float(a), float(b), float(c)) for d, a, b, c in rows}


def _kept(where: str) -> tuple[int, ...]:
    """The rows with a well-formed key each side's part of ``where`` keeps."""
    con = _raw()
    return tuple(
        len(con.execute(f"SELECT k FROM {side} WHERE k IS NOT NULL AND {part}").fetchall())
        for side, part in zip(("v", "t"), where.split(" AND "), strict=True)
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[JoinWorld]:
    made = JoinWorld(tmp_path / "node")
    made.publish(VISITS, PAYMENTS)
    yield made
    made.close()


def test_each_holder_blinds_its_versions_distinct_keys_whatever_the_where_keeps(
    world: JoinWorld,
) -> None:
    exchange = Exchange(world.node)
    recording = Counting(LocalVault.of(world.node))
    queries = Queries(
        Coordinator(
            world.node,
            vault=recording,
            contracts=exchange.contracts,
            policies=exchange.policies,
            ledger=exchange.ledger,
        )
    )
    distinct = (
        len({_key(p) for p, _, _ in VISITS} - {None}),
        len({_key(p) for p, _, _ in PAYMENTS} - {None}),
    )
    assert distinct == (5, 5)
    kept = {name: _kept(where) for name, where in WHERES.items()}
    assert kept == {"none": (0, 0), "half": (3, 3), "all": (7, 6)}
    for name, where in WHERES.items():
        recording.sent.clear()
        answered = queries.run(exchange.actor(CONSUMER), SQL.format(where=where), epsilon=0.5)
        assert answered.epsilon_spent == pytest.approx(1.0)
        # Each holder sent a token per distinct key of its version, and the columns of
        # the rows its WHERE keeps only; each received the other's tokens.
        assert recording.blinded() == list(zip(distinct, kept[name], strict=True)), name
        assert recording.reblinded() == [distinct[1], distinct[0]], name


@pytest.mark.parametrize("name", list(WHERES))
def test_the_answer_is_the_plain_join_whatever_the_where_keeps(world: JoinWorld, name: str) -> None:
    exchange = Exchange(world.node)
    run = priced(exchange, SQL.format(where=WHERES[name]))
    got = exact_answers(run.plan.plan, run.exact(exchange.vault))
    want = _plain(WHERES[name])
    assert {d for d, figures in got.items() if any(figures)} == set(want)
    for district, figures in want.items():
        assert got[district] == pytest.approx(figures)
