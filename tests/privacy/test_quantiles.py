"""Private quantiles: within the bounds, bounded per unit, priced like a SUM, and with
intervals that cover the quantile of the bounded data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import opendp.prelude as dp
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES, DATASET, visit_standard

from entrepot.engine import DuckDBEngine, EngineOptions, write_unit_columns
from entrepot.errors import InvalidInput, PolicyViolation
from entrepot.privacy import Answer, Plan, mechanisms, parse_policy, plan
from entrepot.privacy._quantiles import _edge, candidates, refined, spec
from entrepot.privacy._quantiles import estimate as estimates
from entrepot.privacy.mechanisms import QUANTILE_CANDIDATES, Weighted, quantile_sensitivity
from entrepot.privacy.plan import AUXILIARY_SHARE

STANDARD = visit_standard()
LOW, HIGH = STANDARD.field("cost").bounds or (0.0, 0.0)
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


def write(path: Path, units: list[int], districts: list[str], costs: list[float | None]) -> Path:
    n = len(costs)
    table = pa.Table.from_pydict(
        {
            "visit_id": [f"V{i}" for i in range(n)],
            "patient_id": [f"P-{u:06d}" for u in units],
            "visit_date": [19358 + i % 365 for i in range(n)],
            "district": districts,
            "sex": [1 + i % 2 for i in range(n)],
            "age_band": ["18-64"] * n,
            "diagnosis_group": ["A"] * n,
            "cost": costs,
            "duration_hours": [1.0] * n,
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return path


def policy(**contributions: Any) -> Any:
    document: dict[str, Any] = {"epsilon": {"per_query": 1e9}}
    if contributions:
        document["contributions"] = contributions
    return parse_policy(document, STANDARD)


def run(p: Plan, path: Path) -> Answer:
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        return p.run(session, "v")


def samples(p: Plan, path: Path, *, counted: bool = False) -> pa.Table:
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        return session.execute(p.rewrite.samples_sql("v", counted=counted))


def spent(name: str, level: float, scale: float, rows: float) -> float:
    """What a selection at ``scale`` spends when one unit moves ``rows`` of weight."""
    selection = mechanisms._selection(name, scale)
    return float(selection.map(quantile_sensitivity(rows, level)))


def by_district(answer: Answer, name: str) -> dict[str, Any]:
    index = answer.aggregates.index(name)
    return {row.key[0]: row.values[index] for row in answer.rows}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    costs=st.lists(
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.just(math.nan)),
        max_size=60,
    ),
    level=st.floats(0.01, 0.99),
    epsilon=st.sampled_from([0.01, 1.0, 1e6]),
    grouped=st.booleans(),
)
def test_quantiles_and_their_intervals_lie_within_the_measures_bounds(
    tmp_path: Path, costs: list[float | None], level: float, epsilon: float, grouped: bool
) -> None:
    path = write(
        tmp_path / "v.parquet",
        [i % 7 for i in range(len(costs))],
        [("D1", "D2", "DX")[i % 3] for i in range(len(costs))],
        costs,
    )
    keys = "district, " if grouped else ""
    sql = f"SELECT {keys}QUANTILE_CONT(cost, {level!r}) AS q, MEDIAN(cost) AS m FROM {DATASET}"
    sql += " GROUP BY district" if grouped else ""
    p = plan(sql, standard=STANDARD, policy=policy(), epsilon=epsilon, codes=CODES)
    answer = run(p, path)
    assert answer.rows
    for row in answer.rows:
        for estimate in row.values:
            assert LOW <= estimate.lo <= estimate.hi <= HIGH
            if estimate.value is not None:
                assert estimate.lo <= estimate.value <= estimate.hi


def weighted(listed: list[dict[str, float]] | None) -> list[tuple[float, float]]:
    """A group's ``{x, w}`` pairs as sorted (value, weight) tuples."""
    return sorted((pair["x"], pair["w"]) for pair in listed or [])


def test_a_unit_with_many_rows_weighs_at_most_r_whichever_text_runs(tmp_path: Path) -> None:
    # unit 0 has 5,000 rows of cost 4,000; units 1..300 one row each of cost 100
    units = [0] * 5000 + list(range(1, 301))
    costs: list[float | None] = [4000.0] * 5000 + [100.0] * 300
    plain = write(tmp_path / "v.parquet", units, ["D1"] * len(units), costs)
    counted = tmp_path / "v_units.parquet"
    write_unit_columns(plain, counted, "patient_id", threads=1, memory_limit="256MB")
    p = plan(
        f"SELECT district, MEDIAN(cost) FROM {DATASET} GROUP BY district",
        standard=STANDARD,
        policy=policy(rows_per_group=4, groups=1),
        codes=CODES,
    )
    assert p.rewrite.rows_per_unit == 4
    for path, stored in ((plain, False), (counted, True)):
        table = samples(p, path, counted=stored).to_pylist()
        pairs = weighted(next(r["__x0"] for r in table if r["__k0"] == "D1"))
        # every row is there, each of the large unit's weighing 4/5,000
        assert pairs == [(100.0, 1.0)] * 300 + [(4000.0, 4 / 5000)] * 5000
    # so the unit cannot drag the median: it stays at the other units' 100
    answer = run(p, counted)
    p_huge = plan(
        f"SELECT district, MEDIAN(cost) FROM {DATASET} GROUP BY district",
        standard=STANDARD,
        policy=policy(rows_per_group=4, groups=1),
        epsilon=1e6,
        codes=CODES,
    )
    assert by_district(run(p_huge, counted), "median_cost")["D1"].value == pytest.approx(100.0)
    assert answer.interval_of == "bounded data"


def test_a_filter_bounds_units_by_their_rows_under_it(tmp_path: Path) -> None:
    # unit 0 has 10 rows, 3 of them in D2: under WHERE district = 'D2' it keeps all 3
    units = [0] * 10 + list(range(1, 21))
    districts = ["D1"] * 7 + ["D2"] * 3 + ["D2"] * 20
    plain = write(tmp_path / "v.parquet", units, districts, [float(i) for i in range(30)])
    counted = tmp_path / "v_units.parquet"
    write_unit_columns(plain, counted, "patient_id", threads=1, memory_limit="256MB")
    p = plan(
        f"SELECT MEDIAN(cost) FROM {DATASET} WHERE district = 'D2'",
        standard=STANDARD,
        policy=policy(rows_per_group=4, groups=1),
        codes=CODES,
    )
    for path, stored in ((plain, False), (counted, True)):
        pairs = weighted(samples(p, path, counted=stored).column("__x0")[0].as_py())
        assert pairs == [(float(i), 1.0) for i in range(7, 30)]


def test_intervals_cover_the_quantile_of_the_bounded_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 16000
    # continuous costs in D1, heavily tied ones in D2; every unit within its bound
    costs = np.where(
        np.arange(n) % 2 == 0,
        rng.gamma(2.0, 400.0, n),
        rng.choice([200.0, 450.0, 450.0, 450.0, 1200.0], n),
    )
    districts = ["D1" if i % 2 == 0 else "D2" for i in range(n)]
    path = write(tmp_path / "v.parquet", [i // 3 for i in range(n)], districts, costs.tolist())
    clamped = np.clip(costs, LOW, HIGH)
    truth = {
        (d, level): float(np.quantile(clamped[i::2], level))
        for i, d in enumerate(("D1", "D2"))
        for level in (0.5, 0.9)
    }
    p = plan(
        f"SELECT district, MEDIAN(cost) AS m, QUANTILE_CONT(cost, 0.9) AS p90 FROM {DATASET} "
        "GROUP BY district",
        standard=STANDARD,
        policy=policy(rows_per_group=3, groups=1),
        epsilon=1.0,
        codes=CODES,
    )
    exact = _exact(p, path)
    values = samples(p, path)
    trials, covered = 120, {key: 0 for key in truth}
    widths: dict[str, list[float]] = {"m": [], "p90": []}
    for _ in range(trials):
        answer = p.release(exact, values)
        for name, level in (("m", 0.5), ("p90", 0.9)):
            for district, estimate in by_district(answer, name).items():
                if district not in ("D1", "D2"):
                    continue
                covered[(district, level)] += estimate.lo <= truth[(district, level)] <= estimate.hi
                widths[name].append(estimate.hi - estimate.lo)
    for key, hits in covered.items():
        assert hits / trials >= 0.95, (key, hits)
    # and the median's intervals say something at 8,000 values a group: far narrower
    # than the bounds (the 90th percentile's upper bracket, at 0.9 + Δ past 0.95, is
    # the upper bound here)
    assert float(np.median(widths["m"])) < (HIGH - LOW) / 5


def _exact(p: Plan, path: Path) -> pa.Table:
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        return session.execute(p.sql("v"))


def test_a_group_without_rows_shows_no_quantile_and_the_bounds(tmp_path: Path) -> None:
    path = write(tmp_path / "v.parquet", list(range(3000)), ["D1"] * 3000, [500.0] * 3000)
    p = plan(
        f"SELECT district, MEDIAN(cost) FROM {DATASET} GROUP BY district",
        standard=STANDARD,
        policy=policy(),
        epsilon=1.0,
        codes=CODES,
    )
    answer = run(p, path)
    rows = {row.key[0]: row for row in answer.rows}
    assert set(rows) == {"D1", "D2", "D3"}
    for district in ("D2", "D3"):
        assert rows[district].near_zero
        if rows[district].values[0].value is None:
            assert (rows[district].values[0].lo, rows[district].values[0].hi) == (LOW, HIGH)
    assert rows["D1"].values[0].value is not None
    assert not rows["D1"].near_zero


def test_merged_small_groups_show_no_quantile(tmp_path: Path) -> None:
    path = write(tmp_path / "v.parquet", list(range(40)), ["D1"] * 40, [500.0] * 40)
    document = {"epsilon": {"per_query": 1e9}, "threshold": 1e9, "small_groups": "merge"}
    p = plan(
        f"SELECT district, MEDIAN(cost) FROM {DATASET} GROUP BY district",
        standard=STANDARD,
        policy=parse_policy(document, STANDARD),
        epsilon=1.0,
        codes=CODES,
    )
    (other,) = run(p, path).rows
    assert other.other
    assert other.values[0].value is None
    assert (other.values[0].lo, other.values[0].hi) == (LOW, HIGH)


def test_a_quantile_takes_one_share_of_the_budget_like_a_sum() -> None:
    common = {"standard": STANDARD, "policy": parse_policy({}, STANDARD), "epsilon": 0.9}
    summed = plan(f"SELECT COUNT(*) AS n, SUM(cost) AS s FROM {DATASET}", **common)
    median = plan(f"SELECT COUNT(*) AS n, MEDIAN(cost) AS m FROM {DATASET}", **common)
    # the count gets the same share whether the other aggregate is a SUM or a median
    assert median.scales == {summed.rewrite.quantities[0].name: summed.scales["__q0"]}
    (quantile,) = median.quantiles
    laplace = mechanisms.get("laplace")
    # the part bounding's removed totals and their put-back test spend comes off first
    assert median.removed_budget == summed.removed_budget > 0
    share = 0.9 * (1 - median.removed_budget) / 2
    rows = median.rewrite.rows_per_unit
    # its share is split over the estimate (80%) and two brackets (10% each), each
    # priced at R rows
    parts = ((quantile.scale, 0.5, share * 0.8), (quantile.bracket_scale, 0.25, share * 0.1))
    for scale, level, part in parts:
        used = spent("laplace", level, scale, rows)
        assert used <= part * (1 + 1e-9)
        assert used == pytest.approx(part)
    assert laplace.quantile_scale(rows, share * 0.8, 0.5) == quantile.scale
    assert median.fingerprint != summed.fingerprint
    assert any("cost clamped" in note for note in median.notes)


def test_a_count_that_only_sizes_a_quantile_gets_a_quarter_share() -> None:
    common = {"standard": STANDARD, "policy": parse_policy({}, STANDARD), "epsilon": 0.9}
    alone = plan(f"SELECT MEDIAN(cost) AS m FROM {DATASET}", **common)
    counted = plan(f"SELECT COUNT(*) AS n, MEDIAN(cost) AS m FROM {DATASET}", **common)
    summed = plan(f"SELECT SUM(cost) AS s, MEDIAN(cost) AS m FROM {DATASET}", **common)
    [size] = alone.rewrite.quantities
    assert size.auxiliary
    assert not counted.rewrite.quantities[0].auxiliary
    # the budget left after the removed share, over 1/4 + 1 shares
    share = 0.9 * (1 - alone.removed_budget) / 1.25
    rows = alone.rewrite.rows_per_unit
    laplace = mechanisms.get("laplace")
    assert alone.scales[size.name] == laplace.scale(rows, share * AUXILIARY_SHARE, 1)
    (quantile,) = alone.quantiles
    assert quantile.scale == laplace.quantile_scale(rows, share * 0.8, 0.5)
    # a SUM beside the median is not read from a quarter-share count: it has its own
    assert not summed.rewrite.derived
    assert {q.kind for q in summed.rewrite.quantities} == {"sum", "rows"}


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_the_quantile_privacy_map_spends_no_more_spread_over_groups(name: str) -> None:
    mechanism = mechanisms.get(name)
    scale = mechanism.quantile_scale(15, 0.1, 0.9)
    whole = spent(name, 0.9, scale, 15)
    assert whole <= 0.1
    # weight spread over groups (w_g summing to 15, rows of weight below 1 included)
    # spends at most what 15 in one group does
    for split in ([5, 5, 5], [1] * 15, [14, 1], [7.5, 7.5], [0.25] * 60, [14.999, 0.001]):
        assert sum(spent(name, 0.9, scale, d) for d in split) <= whole * (1 + 1e-12)


def test_gaussian_policies_release_quantiles_under_zcdp(tmp_path: Path) -> None:
    path = write(tmp_path / "v.parquet", list(range(500)), ["D1"] * 500, [700.0] * 500)
    document = {"epsilon": {"per_query": 1e9}, "mechanism": "gaussian", "delta": 1e-10}
    p = plan(
        f"SELECT MEDIAN(cost) AS m FROM {DATASET}",
        standard=STANDARD,
        policy=parse_policy(document, STANDARD),
        epsilon=1e4,
        codes=CODES,
    )
    (row,) = run(p, path).rows
    assert row.values[0].value == pytest.approx(700.0, abs=2 * (HIGH - LOW) / 1000)


def test_releasing_quantiles_without_their_values_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "v.parquet", list(range(10)), ["D1"] * 10, [500.0] * 10)
    p = plan(f"SELECT MEDIAN(cost) FROM {DATASET}", standard=STANDARD, policy=policy())
    with pytest.raises(InvalidInput, match="samples_sql"):
        p.release(_exact(p, path))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["D1", "D2", "D3"]), st.integers(0, 99)),
        min_size=1,
        max_size=60,
    ),
    k=st.integers(1, 4),
    filtered=st.booleans(),
)
def test_each_unit_weighs_at_most_r_under_any_filter(
    tmp_path: Path, rows: list[tuple[int, str, int]], k: int, filtered: bool
) -> None:
    units, districts, costs = (list(column) for column in zip(*rows, strict=True))
    plain = write(tmp_path / "v.parquet", units, districts, [float(c) for c in costs])
    counted = tmp_path / "v_units.parquet"
    write_unit_columns(plain, counted, "patient_id", threads=1, memory_limit="256MB")
    where = " WHERE district <> 'D3'" if filtered else ""
    p = plan(
        f"SELECT district, MEDIAN(cost) FROM {DATASET}{where} GROUP BY district",
        standard=STANDARD,
        policy=policy(rows_per_group=k, groups=1),
        codes=CODES,
    )
    kept = [r for r in rows if not filtered or r[1] != "D3"]
    per_unit = {u: sum(1 for r in kept if r[0] == u) for u in {r[0] for r in kept}}
    # every row kept, weighing min(1, k / its unit's rows under the filter)
    expected = {
        district: sorted((float(c), min(1.0, k / per_unit[u])) for u, d, c in kept if d == district)
        for district in {r[1] for r in kept}
    }
    for path, stored in ((plain, False), (counted, True)):
        table = samples(p, path, counted=stored).to_pylist()
        listed = {r["__k0"]: weighted(r["__x0"]) for r in table}
        assert listed.keys() == expected.keys()
        for district, pairs in listed.items():
            assert [x for x, _ in pairs] == [x for x, _ in expected[district]]
            assert [w for _, w in pairs] == pytest.approx([w for _, w in expected[district]])
        # so each unit weighs min(its rows, k) in all
        total = sum(w for pairs in listed.values() for _, w in pairs)
        assert total == pytest.approx(sum(min(n, k) for n in per_unit.values()))


@given(
    level=st.one_of(st.floats(-2.0, 2.0, allow_nan=False), st.integers(-1, 2)),
    spelling=st.sampled_from(
        [
            "QUANTILE_CONT(cost, {q})",
            "PERCENTILE_CONT(cost, {q})",
            "PERCENTILE_CONT({q}) WITHIN GROUP (ORDER BY cost)",
        ]
    ),
)
def test_a_level_is_accepted_strictly_between_0_and_1_in_every_spelling(
    level: float, spelling: str
) -> None:
    sql = f"SELECT {spelling.format(q=level)} FROM {DATASET}"
    if 0 < level < 1:
        (aggregate,) = plan(sql, standard=STANDARD, policy=policy()).query.aggregates
        assert (aggregate.function, aggregate.column) == ("quantile", "cost")
        assert aggregate.level == pytest.approx(level)
        assert aggregate.name.startswith("median_" if level == 0.5 else "p")
    else:
        with pytest.raises(PolicyViolation) as refused:
            plan(sql, standard=STANDARD, policy=policy())
        assert refused.value.rule == "quantile"


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["laplace", "gaussian"]),
    level=st.floats(0.001, 0.999),
    where=st.floats(0.0, 1.0),
)
def test_a_bracket_at_any_level_it_may_take_spends_at_most_its_tenth(
    name: str, level: float, where: float
) -> None:
    mechanism = mechanisms.get(name)
    quantile = spec(mechanism, "q", "cost", level, (LOW, HIGH), rows=15, share=0.3)
    edge = _edge(level)
    bracket = edge + (1 - 2 * edge) * where
    if not edge < bracket < 1 - edge:
        return
    assert spent(name, bracket, quantile.bracket_scale, 15) <= 0.3 / 10 * (1 + 1e-12)
    # and the estimate its 80%, on whichever grid: the map depends on no candidate
    assert spent(name, level, quantile.scale, 15) <= 0.3 * 0.8 * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    bounds=st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)).map(sorted),
    ends=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)).map(sorted),
)
@example(bounds=[0.0, 5e-324], ends=[0.0, 1.0])  # a range whose ten-thousandth underflows
def test_the_refined_grid_lies_in_the_interval_and_keeps_the_grids_points(
    bounds: list[float], ends: list[float]
) -> None:
    low, high = bounds
    grid = candidates(low, high)
    # an interval as the brackets make it: two points of the bounds' grid
    a, b = (grid[round(e * (len(grid) - 1))] for e in ends)
    fine = refined(grid, a, b)
    assert list(fine) == sorted(set(fine))
    assert fine[0] == a
    assert fine[-1] == b
    assert set(g for g in grid if a <= g <= b) <= set(fine)
    assert len(fine) <= 2 * QUANTILE_CANDIDATES + 2
    if b > a:
        # a value inside is resolved at least as finely as on the bounds' grid
        steps = np.diff(np.asarray(fine))
        assert steps.max() <= max(np.diff(np.asarray(grid)).max(), 0.0) * (1 + 1e-9)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(["laplace", "gaussian"]),
    level=st.floats(0.05, 0.95),
    n=st.integers(0, 20000),
    spread=st.floats(0.01, 3.0),
    epsilon=st.sampled_from([0.1, 1.0, 10.0]),
    light=st.floats(0.001, 1.0),
)
def test_estimates_lie_in_their_intervals_which_lie_in_the_bounds(
    name: str, level: float, n: int, spread: float, epsilon: float, light: float
) -> None:
    mechanism = mechanisms.get(name)
    quantile = spec(mechanism, "q", "cost", level, (LOW, HIGH), rows=3, share=epsilon)
    rng = np.random.default_rng(n)
    data = np.clip(rng.lognormal(6.0, spread, n), LOW, HIGH)
    # rows of weight 1 and rows of large units, weighing ``light`` each
    weights = np.where(rng.random(n) < 0.5, 1.0, light)
    size = float(weights.sum())
    values, lo, hi = estimates(mechanism, quantile, [Weighted.of(data, weights)], [size], 1e-9)
    (value,), (low,), (high,) = values, lo, hi
    assert LOW <= low <= high <= HIGH
    if n:
        assert value is not None
        assert low <= value <= high


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_a_group_spends_at_most_the_share_whichever_brackets_it_draws(name: str) -> None:
    mechanism = mechanisms.get(name)
    quantile = spec(mechanism, "q", "cost", 0.9, (LOW, HIGH), rows=15, share=0.3)
    scales = quantile.estimate_scales
    # the estimate beside both brackets is the stated scale, and the least share
    assert scales[2] == quantile.scale
    assert scales[0] < scales[1] < scales[2]
    for drawn, scale in enumerate(scales):
        for d in (1, 15):
            used = drawn * spent(name, _edge(0.9), quantile.bracket_scale, d)
            used += spent(name, 0.9, scale, d)
            # pure ε: linear in the rows, so a unit spread over groups spends no more
            assert used <= 0.3 * (d / 15 if name == "laplace" else 1) * (1 + 1e-9)
        if drawn == 0:
            assert spent(name, 0.9, scale, 15) == pytest.approx(0.3)


class _Recording(mechanisms.Laplace):
    """Laplace, recording the level and scale of every selection."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def select_quantile(
        self, data: Weighted, candidates: Sequence[float], level: float, scale: float
    ) -> float:
        self.calls.append((level, scale))
        return super().select_quantile(data, candidates, level, scale)


@pytest.mark.parametrize(
    ("level", "n", "drawn"),
    [(0.5, 100, 0), (0.5, 10**6, 2), (0.9, 3000, 1)],
)
def test_brackets_a_group_does_not_draw_leave_their_share_to_the_estimate(
    level: float, n: int, drawn: int
) -> None:
    mechanism = _Recording()
    quantile = spec(mechanism, "q", "cost", level, (LOW, HIGH), rows=3, share=1.0)
    data = np.random.default_rng(n).uniform(100.0, 900.0, n)
    (value,), (low,), (high,) = estimates(
        mechanism, quantile, [Weighted.of(data)], [float(n)], 1e-9
    )
    assert value is not None
    assert low <= value <= high
    *brackets, last = mechanism.calls
    assert len(brackets) == drawn
    assert all(scale == quantile.bracket_scale for _, scale in brackets)
    assert last == (level, quantile.estimate_scales[drawn])
    if not drawn:
        assert (low, high) == (LOW, HIGH)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which half the weight lies on either side, computed directly."""
    order = np.argsort(values)
    ranked, cumulative = values[order], np.cumsum(weights[order])
    return float(ranked[np.searchsorted(cumulative, cumulative[-1] / 2, side="right")])


def test_a_quantile_is_chosen_from_every_row_weighted_not_from_a_draw(tmp_path: Path) -> None:
    # 100 units of 40 rows each, half at 450 and half at 550, weigh 4 each at R = 4:
    # 200 at 450, 200 at 550. With the one-row units the weighted median is 500, by 5
    # of 2,600: four rows drawn at random from each large unit would move it about
    # twice as much.
    heavy = [u for u in range(100) for _ in range(40)]
    light = list(range(100, 100 + 1095 + 10 + 1095))
    units = heavy + light
    costs = [450.0 if i % 2 else 550.0 for i in range(len(heavy))]
    costs += [450.0] * 1095 + [500.0] * 10 + [550.0] * 1095
    plain = write(tmp_path / "v.parquet", units, ["D1"] * len(units), costs)
    counted = tmp_path / "v_units.parquet"
    write_unit_columns(plain, counted, "patient_id", threads=1, memory_limit="256MB")
    weights = np.array([4 / 40] * len(heavy) + [1.0] * len(light))
    truth = weighted_median(np.array(costs), weights)
    assert truth == 500.0
    p = plan(
        f"SELECT MEDIAN(cost) AS m FROM {DATASET}",
        standard=STANDARD,
        policy=policy(rows_per_group=4, groups=1),
        epsilon=1e6,
        codes=CODES,
    )
    assert p.rewrite.rows_per_unit == 4
    for path in (plain, counted):
        answers = {run(p, path).rows[0].values[0].value for _ in range(8)}
        assert answers == {truth}


def brute_scores(
    values: list[float], weights: list[float], grid: list[float], level: float
) -> list[float]:
    """Each candidate's weighted quantile score, one value at a time."""
    num, den = mechanisms.level_fraction(level)
    scores = []
    for c in grid:
        below = math.fsum(w for x, w in zip(values, weights, strict=True) if x < c)
        above = math.fsum(w for x, w in zip(values, weights, strict=True) if x > c)
        scores.append(abs((den - num) * below - num * above) / den)
    return scores


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.integers(-20, 20).map(float), st.floats(-1e6, 1e6)),
            st.floats(1e-6, 1.0),
        ),
        max_size=80,
    ),
    grid=st.lists(
        st.one_of(st.integers(-25, 25).map(float), st.floats(-1e6, 1e6)), min_size=1, max_size=40
    ).map(lambda g: sorted(set(g))),
    level=st.floats(0.0001, 0.9999),
)
def test_weighted_scores_are_those_counted_one_value_at_a_time(
    pairs: list[tuple[float, float]], grid: list[float], level: float
) -> None:
    values, weights = [x for x, _ in pairs], [w for _, w in pairs]
    scores = Weighted.of(values, weights).scores(np.asarray(grid), level)
    assert scores.tolist() == pytest.approx(brute_scores(values, weights, grid, level), abs=1e-9)


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
@pytest.mark.parametrize("level", [0.5, 0.25, 0.9, 0.123456, 1 / 3, 0.99999])
def test_on_rows_of_weight_1_the_selection_is_opendps_private_quantile(
    name: str, level: float
) -> None:
    rng = np.random.default_rng(round(level * 1e6))
    data = rng.lognormal(6.0, 1.0, 2000)
    grid = candidates(LOW, HIGH)
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    measure = getattr(dp, mechanisms.get(name).measure)()
    # the same scores, up to OpenDP's integer scale (the level's denominator)
    score = dp.t.make_quantile_score_candidates(domain, dp.symmetric_distance(), grid, level)
    _, den = mechanisms.level_fraction(level)
    ours = Weighted.of(data).scores(np.asarray(grid), level) * den
    assert ours.tolist() == pytest.approx(list(score(data)), abs=1e-6)
    # the same privacy cost at d_in = R, at any scale
    rows = 27
    for scale in (0.01, 3.0, 1e4):
        private = dp.m.make_private_quantile(
            domain, dp.symmetric_distance(), measure, candidates=grid, alpha=level, scale=scale
        )
        assert spent(name, level, scale, rows) == pytest.approx(float(private.map(rows)), rel=1e-9)
    # and the same selection: at a tiny scale both take a best candidate (one of those
    # tied for the least score: no data lie between them)
    tiny = 1e-6
    private = dp.m.make_private_quantile(
        domain, dp.symmetric_distance(), measure, candidates=grid, alpha=level, scale=tiny
    )
    mechanism = mechanisms.get(name)
    for _ in range(3):
        for picked in (
            mechanism.select_quantile(Weighted.of(data), grid, level, tiny),
            private(data),
        ):
            assert ours[grid.index(picked)] == ours.min()
