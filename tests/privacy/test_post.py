"""Post-processing: the array computation gives, bit for bit, the group-by-group answer."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES, DATASET

from entrepot.privacy import Plan, mechanisms, parse_policy, plan
from entrepot.privacy._post import Noisy, estimate_rows, near_zero_alpha
from entrepot.standards.schema import load_standard_file

SCHEMA = Path(__file__).parents[2] / "src/entrepot/standards/schemas/health.visit.json"
SQL = (
    "SELECT district, sex, COUNT(*) AS visits, COUNT(DISTINCT patient_id) AS patients, "
    "COUNT(duration_hours) AS timed, SUM(cost) AS total, AVG(cost) AS avg_cost, "
    f"AVG(duration_hours) AS avg_hours FROM {DATASET} GROUP BY district, sex"
)
STANDARD = load_standard_file(SCHEMA)
GROUPS = len(CODES["region.district"]) * len(CODES["sex"])
ALPHA = 0.05
noise = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-300, -1e-300]),
    st.floats(min_value=-1e7, max_value=1e7, allow_nan=False),
)


@functools.cache
def _plan(mechanism: str, threshold: float, small_groups: str, epsilon: float) -> Plan:
    policy = parse_policy(
        {
            "mechanism": mechanism,
            "delta": 1e-9,
            "threshold": threshold,
            "small_groups": small_groups,
        },
        STANDARD,
    )
    return plan(SQL, standard=STANDARD, policy=policy, epsilon=epsilon, codes=CODES)


def _reference(
    p: Plan, vectors: dict[str, list[float]], index: list[int], merged: int
) -> list[tuple[float | None, ...]]:
    """The estimates of the groups ``index`` (summed when ``merged``), one at a time."""
    mechanism = mechanisms.get(p.mechanism)
    derived = {d.column: d for d in p.rewrite.derived}

    def width(name: str, alpha: float) -> float:
        if merged <= 1:
            return mechanism.halfwidth(p.scales[name], alpha)
        return math.sqrt(merged * mechanism.variance(p.scales[name]) / alpha)

    def sum_width(column: str, alpha: float) -> float:
        d = derived[column]
        scales = [p.scales[d.centred], abs(d.midpoint) * p.scales[d.count]]
        if merged <= 1:
            return mechanism.combined_halfwidth(scales, alpha)
        return math.sqrt(merged * sum(mechanism.variance(s) for s in scales) / alpha)

    names = {(q.kind, q.column): q.name for q in p.rewrite.quantities}

    def count_name(column: str | None) -> str:
        if column is None or STANDARD.field(column).required:
            return names[("rows", None)]
        return names[("values", column)]

    out: list[tuple[float | None, ...]] = []
    for i in index:
        v = {name: vector[i] for name, vector in vectors.items()}
        row: list[float | None] = []
        for aggregate in p.query.aggregates:
            if aggregate.function in ("count", "count_distinct"):
                name = (
                    names[("units", None)]
                    if aggregate.function == "count_distinct"
                    else count_name(aggregate.column)
                )
                h = width(name, ALPHA)
                row += [max(0.0, v[name]), max(0.0, v[name] - h), max(0.0, v[name] + h)]
                continue
            assert aggregate.column is not None
            name = names[("centred", aggregate.column)]
            if aggregate.function == "sum":
                # every SUM here is read from its centred sum and its count
                d = derived[aggregate.column]
                total = v[d.centred] + d.midpoint * v[d.count]
                h = sum_width(aggregate.column, ALPHA)
                row += [total, total - h, total + h]
                continue
            low, high = STANDARD.field(aggregate.column).bounds or (-math.inf, math.inf)
            middle = (low + high) / 2
            total, count = v[name], v[count_name(aggregate.column)]
            if count <= 0:
                row += [None, low, high]
                continue
            value = min(max(middle + total / count, low), high)
            th, ch = width(name, ALPHA / 2), width(count_name(aggregate.column), ALPHA / 2)
            if count - ch <= 0:
                # the count's interval reaches 0: nothing is known, marked or not
                row += [None, low, high]
                continue
            ratios = [
                middle + t / c for t in (total - th, total + th) for c in (count - ch, count + ch)
            ]
            lo, hi = min(max(min(ratios), low), high), max(min(max(ratios), high), low)
            row += [value, lo, hi]
        out.append(tuple(row))
    return out


def _flat(rows: list[Any]) -> list[tuple[float | None, ...]]:
    return [tuple(x for e in row.values for x in (e.value, e.lo, e.hi)) for row in rows]


def _bits(rows: list[tuple[float | None, ...]]) -> list[list[str]]:
    # repr tells 0.0 from -0.0, which the canonical JSON of an answer does too.
    return [[repr(x) for x in row] for row in rows]


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    mechanism=st.sampled_from(["laplace", "gaussian"]),
    threshold=st.sampled_from([0.0, 5.0, 50.0]),
    small_groups=st.sampled_from(["suppress", "merge"]),
    epsilon=st.sampled_from([0.01, 0.5, 1.0]),
    drop_near_zero=st.booleans(),
)
def test_array_post_processing_equals_the_group_by_group_computation(
    data: st.DataObject,
    mechanism: str,
    threshold: float,
    small_groups: str,
    epsilon: float,
    drop_near_zero: bool,
) -> None:
    p = _plan(mechanism, threshold, small_groups, epsilon)
    vectors = {
        q.name: data.draw(st.lists(noise, min_size=GROUPS, max_size=GROUPS))
        for q in p.rewrite.quantities
    }
    noisy = Noisy(
        mechanisms.get(mechanism), p.rewrite.quantities, p.scales, vectors, p.rewrite.derived
    )
    counted = next(q.name for q in p.rewrite.quantities if q.kind == "units")
    rows, suppressed, merged = estimate_rows(
        p.groups,
        p.query.aggregates,
        noisy,
        STANDARD,
        threshold_name=counted if threshold > 0 else None,
        threshold=threshold,
        merge=small_groups == "merge",
        drop_near_zero=drop_near_zero,
    )
    h = mechanisms.get(mechanism).halfwidth(p.scales[counted], near_zero_alpha("units", GROUPS))
    near = [vectors[counted][i] - h <= 0 for i in range(GROUPS)]
    small = [
        i
        for i in range(GROUPS)
        if (threshold > 0 and vectors[counted][i] < threshold) or (drop_near_zero and near[i])
    ]
    shown = [i for i in range(GROUPS) if i not in small]
    expected = _reference(p, vectors, shown, 1)
    if small and small_groups == "merge":
        sums = {name: [math.fsum(vector[i] for i in small)] for name, vector in vectors.items()}
        expected += _reference(p, sums, [0], len(small))
        assert (merged, suppressed) == ([p.groups[i] for i in small], [])
    else:
        assert (suppressed, merged) == ([p.groups[i] for i in small], [])
    assert _bits(_flat(rows)) == _bits(expected)
    assert [row.key for row in rows if not row.other] == [p.groups[i] for i in shown]
    assert [row.near_zero for row in rows if not row.other] == [near[i] for i in shown]
    for row in rows:
        assert all(e.lo <= e.value <= e.hi for e in row.values if e.value is not None)


@pytest.mark.parametrize(("total", "bound"), [(-1e13, 0.0), (1e13, 5000.0)])
def test_an_average_whose_ratios_all_miss_the_bounds_shrinks_to_the_nearer_bound(
    total: float, bound: float
) -> None:
    # A SUM far below (or above) anything the bounds allow over a COUNT known well
    # above 0: every ratio of the two intervals falls outside [0, 5000], which the
    # two intervals missing together (a < 5% event) can produce. The interval is then
    # the nearer bound, and the estimate stays inside it.
    p = _plan("laplace", 0.0, "suppress", 0.05)
    vectors = {q.name: [1e5] * GROUPS for q in p.rewrite.quantities}
    cost = next(q.name for q in p.rewrite.quantities if (q.kind, q.column) == ("centred", "cost"))
    vectors[cost] = [total] * GROUPS
    noisy = Noisy(
        mechanisms.get("laplace"), p.rewrite.quantities, p.scales, vectors, p.rewrite.derived
    )
    rows, _, _ = estimate_rows(
        p.groups, p.query.aggregates, noisy, STANDARD, threshold_name=None, threshold=0.0,
        merge=False,
    )  # fmt: skip
    average = p.query.output.index("avg_cost") - len(p.query.keys)
    for row in rows:
        estimate = row.values[average]
        assert (estimate.value, estimate.lo, estimate.hi) == (bound, bound, bound)
