"""Post-processing of noisy quantities into estimates: AVG, intervals, small groups.

Everything here reads noisy values and public numbers (scales, bounds, the
threshold) only, so it spends no privacy budget.

Intervals, at confidence 1 - α (α = 0.05):

- COUNT and SUM: the noisy value ± the mechanism's exact half-width; a count's
  value and interval are cut at 0 (the truth is never negative, so coverage is
  unchanged).
- AVG = noisy SUM / noisy COUNT, clamped to the measure's public bounds; its
  interval takes every ratio of the SUM and COUNT intervals at level α/2 each
  (Bonferroni: both cover with probability ≥ 1 - α), intersected with the bounds;
  when the COUNT interval reaches 0 the interval is the bounds themselves.
- The merged "other" group: the sum of m noisy values has variance m·v; its
  half-width is √(m·v/α) (Chebyshev: conservative, valid for any noise shape);
  a single merged group keeps its exact half-width.

The intervals cover the answer on the clamped, bounded data; clamping and
contribution bounding can bias that answer against the raw data, and the answer's
notes say which bounds applied.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from entrepot.privacy.answer import OTHER, Estimate, Row
from entrepot.privacy.mechanisms import Mechanism
from entrepot.privacy.sql.query import Aggregate
from entrepot.privacy.sql.rewrite import Quantity
from entrepot.standards.schema import Standard

__all__ = ["Noisy", "estimate_rows"]

_ALPHA = 0.05
Halfwidth = Callable[[str, float], float]


class Noisy:
    """The noisy quantities of one query: a vector per quantity, aligned with groups."""

    def __init__(
        self,
        mechanism: Mechanism,
        quantities: Sequence[Quantity],
        scales: dict[str, float],
        vectors: dict[str, list[float]],
    ) -> None:
        self.mechanism = mechanism
        self.quantities = {(q.kind, q.column): q for q in quantities}
        self.scales = scales
        self.vectors = vectors

    def name(self, kind: str, column: str | None) -> str:
        return self.quantities[(kind, column)].name

    def count_name(self, column: str | None, standard: Standard) -> str:
        if column is None or standard.field(column).required:
            return self.name("rows", None)
        return self.name("values", column)

    def halfwidth(self, merged: int) -> Halfwidth:
        @functools.cache
        def width(name: str, alpha: float) -> float:
            scale = self.scales[name]
            if merged <= 1:
                return self.mechanism.halfwidth(scale, alpha)
            return math.sqrt(merged * self.mechanism.variance(scale) / alpha)

        return width


Recipe = tuple[str, str, str, float, float]


def recipes(aggregates: Sequence[Aggregate], noisy: Noisy, standard: Standard) -> list[Recipe]:
    """Per aggregate: its function, the quantity it reads, its count, and its bounds."""
    out = []
    for aggregate in aggregates:
        low, high = -math.inf, math.inf
        count = ""
        if aggregate.function == "count_distinct":
            name = noisy.name("units", None)
        elif aggregate.function == "count":
            name = noisy.count_name(aggregate.column, standard)
        else:
            assert aggregate.column is not None, "SUM and AVG always name their measure"
            name = noisy.name("sum", aggregate.column)
            if aggregate.function == "avg":
                count = noisy.count_name(aggregate.column, standard)
            low, high = standard.field(aggregate.column).bounds or (low, high)
        out.append((aggregate.function, name, count, low, high))
    return out


def _estimates(
    plan: Sequence[Recipe], values: dict[str, float], width: Halfwidth
) -> tuple[Estimate, ...]:
    out = []
    for function, name, count_name, low, high in plan:
        v = values[name]
        if function in ("count", "count_distinct"):
            # A count is never negative: flooring the noisy value at 0 is free
            # post-processing and keeps it inside its (floored) interval.
            h = width(name, _ALPHA)
            out.append(Estimate(max(0.0, v), max(0.0, v - h), max(0.0, v + h)))
        elif function == "sum":
            h = width(name, _ALPHA)
            out.append(Estimate(v, v - h, v + h))
        else:
            out.append(_average(v, values[count_name], name, count_name, low, high, width))
    return tuple(out)


def _average(
    total: float,
    count: float,
    total_name: str,
    count_name: str,
    low: float,
    high: float,
    width: Halfwidth,
) -> Estimate:
    if count <= 0:
        return Estimate((low + high) / 2, low, high)
    value = min(max(total / count, low), high)
    total_h, count_h = width(total_name, _ALPHA / 2), width(count_name, _ALPHA / 2)
    if count - count_h <= 0:
        return Estimate(value, low, high)
    totals = (total - total_h, total + total_h)
    ratios = [t / c for t in totals for c in (count - count_h, count + count_h)]
    return Estimate(value, max(min(ratios), low), min(max(ratios), high))


def estimate_rows(
    groups: Sequence[tuple[Any, ...]],
    aggregates: Sequence[Aggregate],
    noisy: Noisy,
    standard: Standard,
    *,
    threshold_name: str | None,
    threshold: float,
    merge: bool,
) -> tuple[list[Row], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows to show, and the keys of suppressed and of merged groups."""
    rows: list[Row] = []
    small: list[int] = []
    single = noisy.halfwidth(1)
    plan = recipes(aggregates, noisy, standard)
    for index, key in enumerate(groups):
        values = {name: vector[index] for name, vector in noisy.vectors.items()}
        if threshold_name is not None and values[threshold_name] < threshold:
            small.append(index)
            continue
        rows.append(Row(key=key, values=_estimates(plan, values, single)))
    small_keys = [groups[i] for i in small]
    if not merge or not small:
        return rows, small_keys, []
    merged = {name: math.fsum(vector[i] for i in small) for name, vector in noisy.vectors.items()}
    width = noisy.halfwidth(len(small))
    other = Row(
        key=tuple(OTHER for _ in groups[0]),
        values=_estimates(plan, merged, width),
        other=True,
    )
    return [*rows, other], [], small_keys
