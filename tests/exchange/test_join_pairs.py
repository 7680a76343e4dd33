"""The joined view a private join's aggregates read: each unit's m × n pairs of rows up to
:func:`~entrepot.exchange.join.pairs_read` of them, and beyond, every pair of a random part
of its rows on each side, at least that many pairs and fewer than twice as many: what the
view reads grows with a unit's rows, never their product."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.engine import UNIT_KEY, UNIT_ROWS, DuckDBEngine, EngineOptions
from entrepot.engine._sql import ident
from entrepot.exchange.join import _Pairs, pairs_read

# A row's value names its unit and its place among the unit's rows on its side.
_PLACE = 100_000

units_drawn = st.lists(st.tuples(st.integers(1, 80), st.integers(1, 80)), min_size=1, max_size=6)


def _side(sizes: list[int], name: str, order: list[int]) -> pa.Table:
    units = [u for u, size in enumerate(sizes) for _ in range(size)]
    places = [i for size in sizes for i in range(size)]
    rows = sorted(range(len(units)), key=lambda r: order[r % len(order)] * len(units) + r)
    return pa.table(
        {
            "u": pa.array([units[r] for r in rows], pa.int64()),
            name: pa.array([units[r] * _PLACE + places[r] for r in rows], pa.int64()),
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    units=units_drawn,
    rows=st.integers(1, 300),
    order=st.lists(st.integers(0, 5), min_size=1, max_size=7),
)
def test_each_unit_is_read_whole_up_to_the_limit_and_as_the_pairs_of_some_rows_beyond(
    units: list[tuple[int, int]], rows: int, order: list[int]
) -> None:
    limit = pairs_read(rows)
    left = _side([m for m, _ in units], "lv", order)
    right = _side([n for _, n in units], "rv", list(reversed(order)))
    pairs = _Pairs.of(left, right, "u", len(units), rows)
    counted = (
        "SELECT u, count(*) AS pairs, count(DISTINCT (lv, rv)) AS distinct_pairs, "
        "count(DISTINCT lv) AS lefts, count(DISTINCT rv) AS rights, "
        f"min({ident(UNIT_ROWS)}) AS low, max({ident(UNIT_ROWS)}) AS high, "
        f"bool_and(lv // {_PLACE} = u AND rv // {_PLACE} = u "
        f"AND {ident(UNIT_KEY)} = u) AS own, "
        f"max(lv % {_PLACE}) AS last_left, max(rv % {_PLACE}) AS last_right "
        "FROM joined GROUP BY u"
    )
    with (
        DuckDBEngine(EngineOptions((Path("/nonexistent"),))) as engine,
        engine.session() as session,
    ):
        pairs.register(session)
        got = {row["u"]: row for row in session.execute(pairs.streamed(counted)).to_pylist()}
    assert set(got) == set(range(len(units)))
    for u, (m, n) in enumerate(units):
        figures = got[u]
        read = figures["pairs"]
        if m * n <= limit:
            assert read == m * n
        else:
            assert limit <= read < 2 * limit
            assert read <= m * n
        # Every pair of the rows read, each pair once.
        assert figures["distinct_pairs"] == read == figures["lefts"] * figures["rights"]
        # Each row carries the pairs read of its unit, whose weight R / that is theirs.
        assert figures["low"] == figures["high"] == read
        assert figures["own"]
        assert figures["last_left"] < m
        assert figures["last_right"] < n


def test_a_unit_read_in_part_keeps_each_of_its_rows_alike() -> None:
    """40 rows a side (1,600 pairs) keep 32 of each side's: each row with chance 0.8.
    Over 400 views each row is kept 320 times, within 6 standard deviations (48) but
    about once in 2 million runs of the 80 rows; keeping the same 32 rows each time, or
    rows in file order, fails."""
    left = _side([40], "lv", [0])
    right = _side([40], "rv", [0])
    kept = {"lv": Counter[int](), "rv": Counter[int]()}
    for _ in range(400):
        pairs = _Pairs.of(left, right, "u", 1, 3)
        for table, name in ((pairs.left, "lv"), (pairs.right, "rv")):
            assert table.num_rows == 32
            kept[name].update(table.column(name).to_pylist())
    for name, counts in kept.items():
        assert len(counts) == 40, name
        assert all(abs(times - 320) <= 48 for times in counts.values()), counts


def test_one_person_more_moves_what_the_view_reads_by_less_than_twice_the_limit() -> None:
    """Two joins one person apart: the second adds a person with 6,000 rows a side (36
    million pairs). What the view reads, and so the join's work, grows by fewer than
    2 · pairs_read pairs, as it would for a person with a few dozen rows."""
    others = [(3, 4), (1, 1), (10, 7)]
    read = []
    for units in (others, [*others, (6_000, 6_000)]):
        left = _side([m for m, _ in units], "lv", [0])
        right = _side([n for _, n in units], "rv", [0])
        pairs = _Pairs.of(left, right, "u", len(units), 3)
        with (
            DuckDBEngine(EngineOptions((Path("/nonexistent"),))) as engine,
            engine.session() as session,
        ):
            pairs.register(session)
            [row] = session.execute(pairs.streamed("SELECT count(*) AS n FROM joined")).to_pylist()
        read.append(row["n"])
    assert read[0] == 3 * 4 + 1 + 10 * 7
    assert 0 < read[1] - read[0] < 2 * pairs_read(3)
