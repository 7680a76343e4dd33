"""The rows-per-unit bound a publish estimates privately, and one bound for every query."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import opendp.prelude as dp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.engine import DuckDBEngine, EngineOptions, write_unit_columns
from entrepot.errors import InvalidInput
from entrepot.privacy import parse_policy, plan
from entrepot.privacy.bounds import (
    CANDIDATES,
    FALLBACK_ROWS_PER_UNIT,
    LEVELS,
    MISS,
    QUANTILE,
    Removal,
    bound_in_force,
    estimate_removed_rows,
    estimate_rows_per_unit,
    level_for,
)
from entrepot.privacy.sql.rewrite import REMOVED_CAP
from entrepot.standards import get

STANDARD = get("health.visit")
DATASET = "riverside_hospitals.outpatient_visits"
DISTRICTS = ["910101", "910102", "910103"]
CODES = {"region.district": DISTRICTS}


def best_candidates(histogram: dict[int, int]) -> set[int]:
    """The candidates OpenDP's own quantile score ranks best (ties included), without
    noise."""
    counts = np.repeat(list(histogram), list(histogram.values())).astype(np.int64)
    score = dp.t.make_quantile_score_candidates(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.symmetric_distance(),
        candidates=list(CANDIDATES),
        alpha=QUANTILE,
    )
    scores = list(score(counts))
    return {c for c, value in zip(CANDIDATES, scores, strict=True) if value == min(scores)}


# Many units, each with a count on the grid of candidates (the bound's resolution).
# The released candidate is then within [min, max] of the rows per unit but with a
# probability below 1e-10: a candidate outside scores at least 0.05·p·n worse than the
# best, p ≥ 5% the share of units at the quantile, and ε ≥ 1 makes each such
# candidate's chance at most e^-26 (docs/privacy.md).
histograms = st.builds(
    lambda rows, units, rest: {**rest, rows: rest.get(rows, 0) + units},
    st.sampled_from(CANDIDATES),
    st.integers(20_000, 60_000),
    st.dictionaries(st.sampled_from(CANDIDATES), st.integers(1, 4_000), max_size=10),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(histogram=histograms, epsilon=st.sampled_from([1.0, 2.0]))
def test_the_released_bound_lies_within_the_rows_per_unit_of_the_data(
    histogram: dict[int, int], epsilon: float
) -> None:
    bound = estimate_rows_per_unit(histogram, epsilon)
    assert bound.rows in CANDIDATES
    assert min(histogram) <= bound.rows <= max(histogram)
    assert bound.level == QUANTILE  # 20,000 units resolve the 95th at ε 1


@settings(max_examples=30, deadline=None, derandomize=True)
@given(histogram=histograms)
def test_at_a_huge_epsilon_the_bound_is_the_exact_quantile(histogram: dict[int, int]) -> None:
    # The release's randomness is OpenDP's alone (no seed exists outside tests'
    # examples); with ε this large the mechanism's choice is the exact one.
    assert estimate_rows_per_unit(histogram, 1e4).rows in best_candidates(histogram)


@pytest.mark.parametrize("epsilon", [0.0, -1.0, math.nan, math.inf])
def test_an_estimate_needs_a_positive_finite_epsilon(epsilon: float) -> None:
    with pytest.raises(InvalidInput, match="finite number > 0"):
        estimate_rows_per_unit({3: 10}, epsilon)


@settings(max_examples=80, deadline=None)
@given(
    units=st.floats(-1_000, 1e6),
    more=st.floats(0, 1e5),
    epsilon=st.sampled_from([0.009, 0.09, 0.9, 9.0]),
)
def test_the_level_is_the_highest_the_units_resolve(
    units: float, more: float, epsilon: float
) -> None:
    level = level_for(units, epsilon)
    assert level in LEVELS
    assert level_for(units + more, epsilon) >= level  # more units never resolve less

    def resolved(q: float) -> bool:
        # OpenDP's quantile scale at level q ≥ 0.5 is 2q/ε: each candidate above the
        # data is drawn with at most exp(-(1 - q)·units·ε / 2q) times the best's chance
        misses = len(CANDIDATES) * math.exp(-(1 - q) * max(units, 0) * epsilon / (2 * q))
        return misses <= MISS

    higher = LEVELS[: LEVELS.index(level)]
    assert not any(resolved(q) for q in higher)
    assert resolved(level) or level == LEVELS[-1]


def test_a_small_dataset_gets_a_bound_within_its_rows() -> None:
    # 1,000 units of 1 to 12 rows: at ε 0.1 their 95th percentile draws above 12 rows
    # more often than not (the candidates above the data outweigh the best)
    histogram = {1: 80, 2: 150, 3: 200, 4: 200, 5: 160, 6: 100, 7: 60, 8: 30}
    histogram |= {9: 12, 10: 5, 11: 2, 12: 1}
    draws = [estimate_rows_per_unit(histogram, 0.1) for _ in range(60)]
    assert all(draw.level < QUANTILE for draw in draws)
    # each draw lands above the data at most MISS of the time once its level holds,
    # which the count of units' low end makes so 95% of the time: 16 of 60 or more
    # at a rate of 0.1 has a probability of 1e-4
    assert sum(draw.rows > max(histogram) for draw in draws) <= 15


def bounded_rows(histogram: dict[int, int], bound: int) -> tuple[int, int]:
    """The rows bounding to ``bound`` keeps and removes, each unit's removed rows
    counted up to the cap."""
    cap = REMOVED_CAP * bound
    kept = sum(min(n, bound) * units for n, units in histogram.items())
    removed = sum(min(max(n - bound, 0), cap) * units for n, units in histogram.items())
    return kept, removed


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    histogram=st.dictionaries(st.integers(1, 200), st.integers(1, 500), min_size=1, max_size=12),
    bound=st.sampled_from([1, 3, 11, 27]),
    epsilon=st.sampled_from([0.1, 1.0]),
)
def test_the_rows_kept_and_removed_are_released_with_the_sensitivity_of_one_unit(
    histogram: dict[int, int], bound: int, epsilon: float
) -> None:
    released = estimate_removed_rows(histogram, bound, epsilon)
    kept, removed, scale = released.kept, released.removed, released.scale
    # the scale OpenDP's privacy map fits to ε for one unit's most on the pair
    assert scale == pytest.approx((REMOVED_CAP + 1) * bound / epsilon, rel=1e-6)
    # one unit, added with any number of rows, moves the pair by at most that in L1
    before = bounded_rows(histogram, bound)
    for rows in (1, bound, bound + 1, 4 * bound, 10 * bound):
        after = bounded_rows({**histogram, rows: histogram.get(rows, 0) + 1}, bound)
        moved = [b - a for a, b in zip(before, after, strict=True)]
        assert min(moved) >= 0
        assert sum(moved) <= (REMOVED_CAP + 1) * bound
    # each noise exceeds ln(1e10)·scale with probability 1e-10
    assert abs(kept - before[0]) <= scale * math.log(1e10)
    assert abs(removed - before[1]) <= scale * math.log(1e10)


def test_the_share_removed_covers_the_truth_at_its_stated_rate() -> None:
    histogram = {2: 4_000, 9: 500, 30: 120, 200: 3}
    bound = 8
    kept, removed = bounded_rows(histogram, bound)
    truth = removed / (kept + removed)
    draws = [estimate_removed_rows(histogram, bound, 0.1) for _ in range(400)]
    shares = [draw.share() for draw in draws]
    assert all(0.0 <= s.lo <= s.value <= s.hi <= 1.0 for s in shares)  # type: ignore[operator]
    covered = sum(s.lo <= truth <= s.hi for s in shares)  # type: ignore[operator]
    # 95% intervals: 400 draws fall under 360 covered with probability 1.4e-5
    assert covered >= 360
    assert Removal(1_000.0, -50.0, 10.0).share().value == 0.0
    assert Removal(-5.0, 5_000.0, 10.0).share().hi == 1.0
    # the most it removed, one-sided at 95%: P(L > t) = exp(-t/b) / 2 = 0.05 at ln 10 scales
    assert Removal(1_000.0, 100.0, 10.0).most() == pytest.approx(100.0 + 10.0 * math.log(10))


def test_the_policy_bound_wins_over_the_estimate_which_wins_over_the_fallback() -> None:
    auto = parse_policy({}, STANDARD)
    assert auto.rows_per_unit is None
    assert bound_in_force(auto, 12).to_dict() == {"rows_per_unit": 12, "source": "estimate"}
    assert bound_in_force(auto, None).rows == FALLBACK_ROWS_PER_UNIT
    fixed = parse_policy({"contributions": {"rows_per_unit": 7}}, STANDARD)
    assert bound_in_force(fixed, 12).to_dict() == {"rows_per_unit": 7, "source": "policy"}


def test_the_earlier_rows_per_group_reads_as_the_grouped_bound_in_total() -> None:
    old = parse_policy({"contributions": {"rows_per_group": 4, "groups": 2}}, STANDARD)
    assert old.rows_per_unit == 8
    assert parse_policy(old.to_yaml(), STANDARD) == old
    with pytest.raises(InvalidInput, match=r"contributions\.rows_per_group"):
        parse_policy({"contributions": {"rows_per_group": 4, "rows_per_unit": 3}}, STANDARD)
    for bad in (0, "many", True, 2.5):
        with pytest.raises(InvalidInput, match=r"contributions\.rows_per_unit"):
            parse_policy({"contributions": {"rows_per_unit": bad}}, STANDARD)


def test_publish_counts_the_units_of_each_size(tmp_path: Path) -> None:
    source = tmp_path / "rows.parquet"
    duckdb.sql(
        "COPY (SELECT 'P-' || (i % 7) AS patient_id, i FROM range(30) t(i) "
        "UNION ALL SELECT NULL, 99) "
        f"TO '{source}' (FORMAT parquet)"
    )
    histogram = write_unit_columns(source, tmp_path / "units.parquet", "patient_id")
    # 30 rows over 7 units: two units of 5 rows, five of 4; the row without a unit in none
    assert histogram == {5: 2, 4: 5}


# -- grouped and ungrouped totals bound alike ----------------------------------------


def skewed(path: Path) -> Path:
    """Visits of 60 patients with 1 row each and 6 with 40: bounding has work to do."""
    rows = []
    for unit in range(66):
        count = 40 if unit < 6 else 1
        for i in range(count):
            rows.append(
                f"SELECT 'P-{unit}' AS patient_id, '{DISTRICTS[(unit + i) % 3]}' AS district, "
                f"DATE '2025-0{1 + i % 6}-01' AS visit_date"
            )
    duckdb.sql(f"COPY (SELECT * FROM ({' UNION ALL '.join(rows)})) TO '{path}' (FORMAT parquet)")
    return path


def exact(sql: str, path: Path, policy: Any, estimate: int | None) -> tuple[float, Any]:
    p = plan(sql, standard=STANDARD, policy=policy, dataset=DATASET, codes=CODES, estimate=estimate)
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        table = session.execute(p.sql("v")).to_pylist()
    [rows] = [q for q in p.rewrite.quantities if q.kind == "rows"]
    return sum(record[rows.name] for record in table), (p, rows)


@pytest.mark.parametrize("estimate", [None, 4])
@pytest.mark.parametrize("where", ["", " WHERE visit_date >= DATE '2025-02-01'"])
def test_an_ungrouped_count_and_its_groups_are_bounded_the_same_way(
    tmp_path: Path, estimate: int | None, where: str
) -> None:
    path = skewed(tmp_path / "visits.parquet")
    policy = parse_policy({"threshold": 0}, STANDARD)
    total, (whole, rows) = exact(
        f"SELECT COUNT(*) AS n FROM {DATASET}{where}", path, policy, estimate
    )
    grouped = f"SELECT district, COUNT(*) AS n FROM {DATASET}{where} GROUP BY district"
    parts, (split, split_rows) = exact(grouped, path, policy, estimate)
    # one bound R for both, from the version's estimate (else the fallback)
    bound = estimate or FALLBACK_ROWS_PER_UNIT
    assert whole.rewrite.rows_per_unit == split.rewrite.rows_per_unit == bound
    assert rows.l1 == split_rows.l1 == bound
    # so the groups add up, before noise, to the total: 60 single visits and 6 · R
    assert parts == pytest.approx(total)
    if not where:
        assert total == pytest.approx(60 + 6 * bound)
    for p in (whole, split):
        assert f"at most {bound} rows in total, grouped or not" in " ".join(p.notes)


def test_a_version_that_released_no_removed_rows_has_no_share_to_put_back() -> None:
    assert Removal(300.0, 100.0, 10.0).ratio() == pytest.approx(1 / 3)
    assert Removal(300.0, -5.0, 10.0).ratio() is None
    assert Removal(-2.0, 100.0, 10.0).ratio() is None
