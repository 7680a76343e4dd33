"""What contribution bounding removed: a noisy share per aggregate, with an interval
that covers the truth at its stated rate, paid from the query's own ε."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_fixtures import DATASET, visit_standard
from scipy.stats import binom

from entrepot.engine import DuckDBEngine, EngineOptions, write_unit_columns
from entrepot.privacy import Answer, Estimate, Plan, Policy, mechanisms, parse_policy, plan
from entrepot.privacy._post import PUT_BACK, Noisy, removed_shares
from entrepot.privacy.bounds import Removal
from entrepot.privacy.sql.rewrite import REMOVED_CAP
from entrepot.standards import codelist

STANDARD = visit_standard()
DISTRICTS = ("910101", "910102", "910103")
POLICY = parse_policy(
    {
        "epsilon": {"per_query": 1e9},
        "contributions": {"rows_per_unit": 4, "groups": 2},
        "coverage": {"district": list(DISTRICTS)},
    },
    STANDARD,
)
GROUPED = f"SELECT district, COUNT(*) AS n, SUM(cost) AS s FROM {DATASET} GROUP BY district"
TOTAL = f"SELECT COUNT(*) AS n, COUNT(DISTINCT patient_id) AS u FROM {DATASET}"
SCHEMA = pa.schema(
    [
        ("visit_id", pa.string()),
        ("patient_id", pa.string()),
        ("visit_date", pa.date32()),
        ("district", pa.string()),
        ("sex", pa.int64()),
        ("age_band", pa.string()),
        ("diagnosis_group", pa.string()),
        ("cost", pa.float64()),
        ("duration_hours", pa.float64()),
    ]
)


def codes(name: str) -> tuple[str, ...]:
    return codelist(name).codes


def write(rows: list[tuple[int, str]], path: Path) -> Path:
    """Visits as (unit, district), each costing 100."""
    table = pa.Table.from_pydict(
        {
            "visit_id": [f"V{i}" for i in range(len(rows))],
            "patient_id": [f"P-{unit:04d}" for unit, _ in rows],
            "visit_date": [dt.date(2025, 3, 1)] * len(rows),
            "district": [district for _, district in rows],
            "sex": [1] * len(rows),
            "age_band": ["25-34"] * len(rows),
            "diagnosis_group": ["I"] * len(rows),
            "cost": [100.0] * len(rows),
            "duration_hours": [1.0] * len(rows),
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return path


def exact(p: Plan, path: Path) -> pa.Table:
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        return session.execute(p.sql("v"))


def planned(sql: str, policy: Policy = POLICY, epsilon: float = 1.0) -> Plan:
    return plan(
        sql, standard=STANDARD, policy=policy, dataset=DATASET, epsilon=epsilon, codes=codes
    )


# The rows-per-unit bound left to the version's estimate.
AUTO = parse_policy(
    {"epsilon": {"per_query": 1e9}, "coverage": {"district": list(DISTRICTS)}}, STANDARD
)


def bounded_by_estimate(sql: str, removed: Removal, epsilon: float) -> Plan:
    """``sql`` planned on a version bounded by its estimate of 4 rows per unit, which
    released ``removed``."""
    return plan(
        sql,
        standard=STANDARD,
        policy=AUTO,
        dataset=DATASET,
        epsilon=epsilon,
        codes=codes,
        estimate=4,
        removed=removed,
    )


def true_share(rows: list[tuple[int, str]], bound: int) -> float:
    """The share of rows bounding removed, every unit counted in full."""
    per_unit = Counter(unit for unit, _ in rows)
    removed = sum(max(0, n - bound) for n in per_unit.values())
    return removed / len(rows) if rows else 0.0


# Units of 1 to (REMOVED_CAP + 1)·R rows (R = 4): nothing is cut from the removed
# total, so it is the truth.
datasets = st.lists(
    st.tuples(st.integers(1, (REMOVED_CAP + 1) * 4), st.sampled_from(DISTRICTS)),
    min_size=5,
    max_size=30,
).map(lambda units: [(u, d) for u, (n, d) in enumerate(units) for _ in range(n)])


def asked(answer: Answer, name: str) -> list[tuple[tuple[str, ...], Estimate]]:
    """Each row's key and its estimate of aggregate ``name`` with the removed part put
    back, for the rows that give one."""
    index = answer.aggregates.index(name)
    return [
        (row.key, row.asked[index])
        for row in answer.rows
        if row.asked and row.asked[index] is not None
    ]


def covers(estimate: Estimate, truth: float) -> bool:
    high = float("inf") if estimate.hi is None else estimate.hi
    return estimate.lo <= truth <= high


def per_district(rows: list[tuple[int, str]]) -> Counter[str]:
    return Counter(district for _, district in rows)


def test_the_budget_is_split_in_the_open() -> None:
    p = planned(GROUPED)
    # the policy's share for the removed totals, half as much again for the cap's test
    assert POLICY.removed_epsilon == 0.1
    assert p.removed_budget == pytest.approx(0.15)
    assert set(p.removal_scales) == {q.name for q in p.rewrite.quantities}
    rows = next(q for q in p.rewrite.quantities if q.kind == "rows")
    # each of the two aggregates' quantities gets 0.85 / 2 of ε, each removed total 0.1 / 2
    assert p.scales[rows.name] == pytest.approx(rows.l1 / 0.425, rel=1e-6)
    assert p.removal_scales[rows.name] == pytest.approx(REMOVED_CAP * rows.l1 / 0.05, rel=1e-6)
    off = planned(GROUPED, parse_policy({"contributions": {"removed_epsilon": 0}}, STANDARD))
    assert off.removal_scales == {}
    assert "_removed" not in off.sql("v")
    assert "_removed" in p.sql("v")
    assert off.scales[rows.name] == pytest.approx(15 / 0.5, rel=1e-6)  # R = 5·3, ε 1 / 2


def test_counts_without_group_by_spend_half_their_budget_on_what_they_put_back() -> None:
    # the removed total is added to the answer itself: it is worth as much as B, and
    # half as much again tests that no unit is above the cap it counts up to
    p = planned(f"SELECT COUNT(*) AS n FROM {DATASET}")
    rows = p.rewrite.quantities[0]
    assert p.removed_budget == 0.75
    assert p.scales[rows.name] == pytest.approx(rows.l1 / 0.25, rel=1e-6)
    assert p.removal_scales[rows.name] == pytest.approx(REMOVED_CAP * rows.l1 / 0.5, rel=1e-6)
    assert p.over_scale == pytest.approx(1 / 0.25, rel=1e-6)
    # grouped, the policy's share stands, and half as much again tests the cap
    grouped = planned(GROUPED)
    assert grouped.removed_budget == pytest.approx(0.15)
    assert grouped.over_scale == pytest.approx(1 / 0.05, rel=1e-6)
    assert "__over" in grouped.sql("v")
    # beside another aggregate, the policy's share and half as much again
    assert planned(TOTAL).removed_budget == pytest.approx(0.15)
    off = parse_policy({"contributions": {"removed_epsilon": 0}}, STANDARD)
    assert planned(f"SELECT COUNT(*) AS n FROM {DATASET}", off).removed_budget == 0.0


def test_nothing_is_spent_on_what_cannot_be_removed(tmp_path: Path) -> None:
    # without GROUP BY, a unit is in one group: its distinct count bounds nothing
    p = planned(TOTAL)
    assert [q.kind for q in p.rewrite.quantities if q.name in p.removal_scales] == ["rows"]
    rows = [(u, "910101") for u in range(10) for _ in range(u + 1)]
    answer = p.release(exact(p, write(rows, tmp_path / "v.parquet")))
    assert set(answer.removed) == {"n"}
    assert answer.interval_of == "bounded data"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=datasets, grouped=st.booleans())
def test_with_huge_epsilon_the_removed_share_is_the_truth(
    tmp_path: Path, rows: list[tuple[int, str]], grouped: bool
) -> None:
    p = planned(GROUPED if grouped else TOTAL, epsilon=1e8)
    answer = p.release(exact(p, write(rows, tmp_path / "v.parquet")))
    truth = true_share(rows, p.rewrite.rows_per_unit)
    share = answer.removed["n"]
    assert share.value == pytest.approx(truth, abs=1e-4)
    assert share.lo <= truth + 1e-4
    assert truth - 1e-4 <= share.hi
    if grouped:
        assert answer.removed["s"].value == pytest.approx(truth, abs=1e-4)
    counts = asked(answer, "n")
    if truth > 0:
        # the question asked: every row, none bounded away, in every group shown
        assert len(counts) == len(answer.rows)
        total = sum(e.value or 0.0 for _, e in counts)
        assert total == pytest.approx(len(rows), abs=1e-3)
        if grouped:
            sums = sum(e.value or 0.0 for _, e in asked(answer, "s"))
            assert sums == pytest.approx(100.0 * len(rows), rel=1e-3)
    else:
        # nothing was removed: nothing is put back but in 1% of answers, and then
        # what is put back is the noise of a total of zero
        assert not counts or sum(e.value or 0.0 for _, e in counts) == pytest.approx(
            len(rows), abs=1e-3
        )
    if not grouped:
        assert [row.asked[1] for row in answer.rows if row.asked] in ([], [None])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=datasets, unit=st.integers(0, 29))
def test_removing_one_unit_moves_the_removed_total_by_at_most_its_sensitivity(
    tmp_path: Path, rows: list[tuple[int, str]], unit: int
) -> None:
    p = planned(GROUPED)
    rest = [row for row in rows if row[0] != unit] or [(999, "910101")]
    one = exact(p, write(rows, tmp_path / "a.parquet"))
    two = exact(p, write(rest, tmp_path / "b.parquet"))
    for q in p.rewrite.quantities:
        column = f"{q.name}_removed"
        moved = abs(sum(one.column(column).to_pylist()) - sum(two.column(column).to_pylist()))
        assert moved <= q.removed + 1e-6


def plausible(covered: int, draws: int, rate: float = 0.95) -> bool:
    """Whether ``covered`` hits of ``draws`` fit a coverage of at least ``rate``: refused
    only when so few hits would happen less than once in a billion tries at ``rate``, so
    a correct interval cannot fail this by chance."""
    return bool(binom.cdf(covered, draws, rate) > 1e-9)


def test_the_binomial_bound_refuses_an_interval_that_covers_too_rarely() -> None:
    assert plausible(285, 300)
    assert plausible(270, 300)  # 90%: not implausible at this count
    assert not plausible(240, 300)  # 80%
    assert not plausible(3_600, 4_000)  # 90% of many draws


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=datasets, epsilon=st.sampled_from([0.1, 0.5, 1.0]), grouped=st.booleans())
def test_the_removed_share_lies_within_its_interval_at_its_stated_rate(
    tmp_path: Path, rows: list[tuple[int, str]], epsilon: float, grouped: bool
) -> None:
    p = planned(GROUPED if grouped else TOTAL, epsilon=epsilon)
    table = exact(p, write(rows, tmp_path / "v.parquet"))
    truth = true_share(rows, p.rewrite.rows_per_unit)
    answers = [p.release(table) for _ in range(300)]
    draws = [answer.removed["n"] for answer in answers]
    assert plausible(sum(share.lo <= truth <= share.hi for share in draws), len(draws))
    assert all(0.0 <= s.lo <= s.value <= s.hi <= 1.0 for s in draws)
    # put back, each group's interval is about the question asked: all its rows
    truths = per_district(rows) if grouped else Counter({(): len(rows)})
    given = [
        covers(e, truths[key[0]] if key else truths[()])
        for answer in answers
        for key, e in asked(answer, "n")
    ]
    assert plausible(sum(given), len(given))


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=datasets, epsilon=st.sampled_from([3.0, 10.0, 30.0, 100.0]))
def test_the_put_back_total_covers_the_question_asked_whenever_it_is_given(
    tmp_path: Path, rows: list[tuple[int, str]], epsilon: float
) -> None:
    # ε large enough that what was removed is sometimes told from zero and sometimes
    # not: the choice reads the noisy removed total, and the interval must hold given it
    p = planned(TOTAL, epsilon=epsilon)
    table = exact(p, write(rows, tmp_path / "v.parquet"))
    answers = [p.release(table) for _ in range(300)]
    totals = [e for answer in answers for _, e in asked(answer, "n")]
    assert plausible(sum(covers(t, len(rows)) for t in totals), len(totals))
    assert all(t.value is not None and covers(t, t.value) for t in totals)
    if true_share(rows, p.rewrite.rows_per_unit) == 0:
        # a removed total of zero is put back in 1% of answers
        assert binom.sf(len(totals) - 1, len(answers), PUT_BACK) > 1e-9


def test_over_many_random_datasets_the_removed_share_is_covered_at_its_rate(
    tmp_path: Path,
) -> None:
    # One seed per dataset: units with 1 to 10·R rows of a skewed (geometric-like) law,
    # 20 answers each, pooled; every aggregate's share (counts and sums) is checked.
    covered = draws = 0
    for seed in range(40):
        rng = random.Random(seed)
        units = rng.randint(5, 40)
        rows = [
            (unit, rng.choice(DISTRICTS))
            for unit in range(units)
            for _ in range(min(1 + int(rng.expovariate(1 / rng.choice([1, 3, 8]))), 20))
        ]
        grouped = seed % 2 == 0
        p = planned(GROUPED if grouped else TOTAL, epsilon=rng.choice([0.1, 0.5, 1.0]))
        table = exact(p, write(rows, tmp_path / f"{seed}.parquet"))
        truth = true_share(rows, p.rewrite.rows_per_unit)
        for _ in range(20):
            answer = p.release(table)
            for share in answer.removed.values():
                covered += share.lo <= truth <= share.hi
                draws += 1
    assert draws == 20 * (20 * 2 + 20 * 1)
    assert plausible(covered, draws)


def skewed(heavy: int, multiple: int, bound: int) -> list[tuple[int, str]]:
    """200 units of 1 to ``bound`` rows, then ``heavy`` units of ``multiple·bound``."""
    light = [(u, "910101") for u in range(200) for _ in range(1 + u % bound)]
    return light + [(1000 + u, "910102") for u in range(heavy) for _ in range(multiple * bound)]


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0])
@pytest.mark.parametrize(("heavy", "multiple"), [(40, 40), (3, 12)])
def test_a_put_back_misses_the_question_asked_at_its_rate_when_units_exceed_the_cap(
    tmp_path: Path, epsilon: float, heavy: int, multiple: int
) -> None:
    # Units above (REMOVED_CAP + 1)·R rows: the removed total leaves their rows above
    # the cap out (40 units of 40·R: 1,200 rows, beyond the removed total's margin at
    # ε 0.5 and 1). An interval about the question asked must still cover the truth:
    # counting every answer, at most 5% give a put-back whose interval misses.
    p = planned(f"SELECT COUNT(*) AS n FROM {DATASET}", epsilon=epsilon)
    bound = p.rewrite.rows_per_unit
    rows = skewed(heavy, multiple, bound)
    table = exact(p, write(rows, tmp_path / "v.parquet"))
    assert table.column("__over").to_pylist() == [pytest.approx(heavy)]
    answers = [p.release(table) for _ in range(300)]
    given = [e for answer in answers for _, e in asked(answer, "n")]
    missed = sum(not covers(t, len(rows)) for t in given)
    assert plausible(len(answers) - missed, len(answers))
    if heavy == 40 and epsilon == 1.0:
        # told from zero: what the units above the cap lost is unknown, and so is the
        # high end of the put-back's interval
        assert sum(t.hi is not None for t in given) <= 3


@pytest.mark.parametrize("where", ["", " WHERE district = '910102'"])
@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
@pytest.mark.parametrize("grouped", [False, True])
def test_every_text_counts_the_units_above_the_cap(
    tmp_path: Path, where: str, dialect: str, grouped: bool
) -> None:
    keys = ("district, ", " GROUP BY district") if grouped else ("", "")
    p = planned(f"SELECT {keys[0]}COUNT(*) AS n FROM {DATASET}{where}{keys[1]}")
    assert p.rewrite.over
    plain = write(skewed(5, 12, p.rewrite.rows_per_unit), tmp_path / "v.parquet")
    counted = tmp_path / "counted.parquet"
    write_unit_columns(plain, counted, "patient_id", threads=1, memory_limit="256MB")
    for path, stored in ((plain, False), (counted, True)):
        text = p.sql("v", dialect, counted=stored)
        with (
            DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
            engine.session() as session,
        ):
            session.register_parquet("v", [path])
            table = session.execute(sqlglot.transpile(text, read=dialect, write="duckdb")[0])
        # over the groups, each unit above the cap once
        assert sum(table.column("__over").to_pylist()) == pytest.approx(5)


def test_merged_small_groups_put_back_their_parts_together(tmp_path: Path) -> None:
    # Two districts under the threshold are merged into "other": the removed total is
    # shared over every public group, and the merged row shows its groups' parts
    merging = parse_policy(
        {
            "epsilon": {"per_query": 1e9},
            "contributions": {"rows_per_unit": 4, "groups": 2},
            "coverage": {"district": list(DISTRICTS)},
            "threshold": 20,
            "small_groups": "merge",
        },
        STANDARD,
    )
    rows = [(u, "910101") for u in range(10) for _ in range(u + 1)]
    rows += [(100, "910102")] * 6 + [(101, "910103")] * 3
    p = planned(f"SELECT district, COUNT(*) AS n FROM {DATASET} GROUP BY district", merging, 1e8)
    table = exact(p, write(rows, tmp_path / "v.parquet"))
    # No unit here is above the cap, yet the test of that, one-sided at 5% (ASSUMED),
    # leaves the high ends unknown in one answer of twenty: 20 answers all do so with
    # probability 1e-26.
    highs = []
    for _ in range(20):
        answer = p.release(table)
        assert [row.other for row in answer.rows] == [False, True]
        assert answer.merged == (("910102",), ("910103",))
        (_, shown), (_, other) = asked(answer, "n")
        # bounded at 4 rows a unit: 34 rows kept in 910101 (21 removed), 4 + 3 in the
        # merged two (2 removed); the 23 removed are shared out as 34 : 7
        assert shown.value == pytest.approx(34 + 23 * 34 / 41, abs=1e-3)
        assert other.value == pytest.approx(7 + 23 * 7 / 41, abs=1e-3)
        assert (shown.lo, other.lo) == (pytest.approx(34, abs=1e-3), pytest.approx(7, abs=1e-3))
        assert (shown.hi is None) == (other.hi is None)
        highs += [(shown.hi, other.hi)] if shown.hi is not None else []
    # no group lost more than all did: each interval reaches up by the whole total, and
    # holds the truth (55 and 9 rows)
    assert highs
    assert all(high == (pytest.approx(57, abs=1e-3), pytest.approx(30, abs=1e-3)) for high in highs)


def test_an_answer_that_could_put_nothing_back_states_the_versions_removed_share(
    tmp_path: Path,
) -> None:
    # 100 rows removed of 400 (at most 100 + 10·ln 10 ≈ 123 at 95%), released at publish
    released = Removal(300.0, 100.0, 10.0)

    def priced(sql: str, epsilon: float = 1.0, **given: Any) -> Plan:
        options: dict[str, Any] = {"policy": AUTO, "estimate": 4, "removed": released, **given}
        return plan(
            sql, standard=STANDARD, dataset=DATASET, epsilon=epsilon, codes=codes, **options
        )

    averages = f"SELECT district, AVG(cost) AS a FROM {DATASET} GROUP BY district"
    told = priced(averages)
    assert (told.removed_budget, told.removal_scales) == (0.0, {})
    assert told.removed_at_publish == released.share()
    assert (
        priced(f"SELECT MEDIAN(cost) AS m, AVG(duration_hours) AS h FROM {DATASET}").removed_budget
        == 0.0
    )
    # a grouped COUNT's removed total, bought with a tenth of ε 1 (noise of scale 4·3/0.1
    # = 120: told from zero above 120·ln 50 ≈ 469 rows), could never be told from zero
    # where at most 123 rows were removed; with 1,000 removed it could
    counts = f"SELECT district, COUNT(*) AS n FROM {DATASET} GROUP BY district"
    assert priced(counts).removed_budget == 0.0
    assert priced(counts, removed=Removal(3_000.0, 1_000.0, 10.0)).removed_budget > 0
    # and at ε 100 the same 123 rows could be told
    assert priced(counts, epsilon=100.0).removed_budget > 0
    # a SUM's is the rows' times its bound (cost: 5,000 a row), and so is its noise
    sums = f"SELECT district, SUM(cost) AS s FROM {DATASET} GROUP BY district"
    assert priced(sums).removed_budget == 0.0
    # a COUNT beside an AVG, another bound than the version's, or no release: the
    # answer buys its own share
    paid = (
        priced(f"SELECT COUNT(*) AS n, AVG(cost) AS a FROM {DATASET}", epsilon=100.0),
        priced(averages, policy=POLICY),
        priced(averages, estimate=None),
        priced(averages, removed=None),
    )
    assert all(p.removed_budget > 0 and p.removed_at_publish is None for p in paid)
    # the answer gives the version's share for each aggregate, says so, and what it
    # spent goes to its values: the noise of the same query paying for its own share
    # is larger by 1 / (1 - f)
    rows = [(unit, DISTRICTS[unit % 3]) for unit in range(12) for _ in range(unit + 1)]
    answer = told.release(exact(told, write(rows, tmp_path / "v.parquet")))
    assert (answer.removed, answer.removed_of, answer.removed_budget) == (
        {"a": released.share()},
        "version",
        0.0,
    )
    assert any("of the version's rows" in note for note in answer.notes)
    own = priced(averages, removed=None)
    for name, scale in told.scales.items():
        assert own.scales[name] == pytest.approx(scale / (1 - own.removed_budget))
    assert Answer.from_json(answer.to_json()) == answer


def test_a_count_or_sum_that_cannot_tell_its_removed_part_puts_back_the_versions(
    tmp_path: Path,
) -> None:
    # a hundred-thousandth of ε 10,000 for the removed totals: too little to tell them
    auto = parse_policy(
        {
            "epsilon": {"per_query": 1e9},
            "contributions": {"removed_epsilon": 1e-5},
            "coverage": {"district": list(DISTRICTS)},
        },
        STANDARD,
    )
    # every district holds units of 1, 3, 6 and 10 rows: bounded to 4 rows each, a
    # district keeps 12 of its 20 rows, and the version 36 of 60 (24 removed, 2/3 of
    # what it keeps), released here with hardly any noise
    sizes = (1, 3, 6, 10)
    rows = [
        (4 * d + i, district)
        for d, district in enumerate(DISTRICTS)
        for i, size in enumerate(sizes)
        for _ in range(size)
    ]
    path = write(rows, tmp_path / "v.parquet")
    released = Removal(36.0, 24.0, 1e-9)

    def answered(sql: str) -> tuple[Plan, Answer]:
        p = plan(
            sql,
            standard=STANDARD,
            policy=auto,
            dataset=DATASET,
            epsilon=10_000.0,
            codes=codes,
            estimate=4,
            removed=released,
        )
        return p, p.release(exact(p, path))

    for aggregate, truth in (("COUNT(*)", 20.0), ("SUM(cost)", 2_000.0)):
        p, answer = answered(f"SELECT district, {aggregate} AS v FROM {DATASET} GROUP BY district")
        # the removed total (at most 24 rows, or 24 · 5,000) could not be told from
        # zero: the version's share is stated, and put back
        assert (p.removed_budget, p.removed_at_publish) == (0.0, released.share())
        assert any("puts back 66.7% of what it kept" in note for note in answer.notes)
        for row in answer.rows:
            bounded, whole = row.values[0], row.asked[0]
            assert bounded is not None
            assert whole is not None
            assert whole.value == pytest.approx(bounded.value * 5 / 3)
            # the sum's noise has scale 2 on 1,200 kept: 5% of 2,000 is 30 scales
            assert whole.value == pytest.approx(truth, rel=0.05)
            # its low end is the bounded one's; its high end unknown (no test of the
            # units above the cap was bought)
            assert whole.lo <= bounded.lo
            assert whole.hi is None
    # an AVG is never put back
    _, answer = answered(f"SELECT district, AVG(cost) AS a FROM {DATASET} GROUP BY district")
    assert all(a is None for row in answer.rows for a in row.asked or ())
    # a WHERE counts each unit's rows over the filter: the version's share is not its own
    p, answer = answered(
        f"SELECT district, COUNT(*) AS n FROM {DATASET} WHERE sex = 1 GROUP BY district"
    )
    assert p.removed_ratio is None
    assert all(a is None for row in answer.rows for a in row.asked or ())
    assert not any("of what it kept" in note for note in answer.notes)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=datasets, removed=st.floats(0.0, 2_000.0), epsilon=st.sampled_from([0.5, 5.0, 50.0]))
def test_a_put_back_of_the_versions_share_stays_within_its_own_interval(
    tmp_path: Path, data: list[tuple[int, str]], removed: float, epsilon: float
) -> None:
    # whatever the version released, bought or not, told or not: a value put back lies
    # in its interval, and never below what the bound kept
    p = bounded_by_estimate(GROUPED, Removal(1_000.0, removed, 10.0), epsilon)
    answer = p.release(exact(p, write(data, tmp_path / "v.parquet")))
    for row in answer.rows:
        if not row.asked:
            continue
        for bounded, whole in zip(row.values, row.asked, strict=True):
            if whole is None:
                continue
            assert bounded is not None
            assert whole.value >= bounded.value - 1e-9
            assert whole.lo <= whole.value
            assert whole.hi is None or whole.value <= whole.hi


def test_a_removed_total_drawn_far_below_zero_puts_back_nothing_and_keeps_a_high_end() -> None:
    p = bounded_by_estimate(GROUPED, Removal(1_000.0, 2_000.0, 10.0), 0.5)
    assert p.removal_scales
    assert p.removed_ratio == pytest.approx(2.0)
    mechanism = mechanisms.get(p.mechanism)
    quantities = p.rewrite.quantities
    noisy = Noisy(
        mechanism,
        quantities,
        p.scales,
        {q.name: [100.0] * len(DISTRICTS) for q in quantities},
        p.rewrite.derived,
    )
    # the answer's own removed totals, drawn far below 0: their high ends are too
    lost = Noisy(
        mechanism,
        [q for q in quantities if q.name in p.removal_scales],
        p.removal_scales,
        {name: [-1e12] for name in p.removal_scales},
        p.rewrite.derived,
    )
    _, put_back = removed_shares(
        p.query.aggregates, noisy, STANDARD, lost, None, ratio=p.removed_ratio
    )
    assert set(put_back) == {"n", "s"}
    # what was removed is never below 0: nothing is put back, the high end is 0
    assert all((back.removed, back.high) == (0.0, 0.0) for back in put_back.values())
