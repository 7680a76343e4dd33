"""Post-processing of noisy quantities into estimates: AVG, intervals, small groups.

Everything here reads noisy values and public numbers (scales, bounds, the
threshold) only, so it spends no privacy budget.

Intervals, at confidence 1 - α (α = 0.05):

- COUNT and SUM: the noisy value ± the mechanism's exact half-width; a count's
  value and interval are cut at 0 (the truth is never negative, so coverage is
  unchanged).
- AVG = m + noisy S / noisy COUNT, ``S`` the sum of deviations from the bounds'
  midpoint ``m``, clamped to the measure's public bounds; its interval takes ``m``
  plus every ratio of the S and COUNT intervals at level α/2 each
  (Bonferroni: both cover with probability ≥ 1 - α), with both ends clamped into
  the bounds (so when every ratio lies outside them, the interval is the nearer
  bound); when the COUNT interval reaches 0 the interval is the bounds themselves.
- The merged "other" group: the sum of m noisy values has variance m·v; its
  half-width is √(m·v/α) (Chebyshev: conservative, valid for any noise shape);
  a single merged group keeps its exact half-width.
- Near zero: a group whose size (its noisy count of units, else of rows, else of
  values, else its first SUM) lies within ``t`` of 0 cannot be told from an empty
  group. ``t`` is the size's half-width at the level :data:`NEGLIGIBLE` shared out
  over the answer's ``G`` public groups (Bonferroni): the mechanism's exact tail
  (Laplace ``P(L > t) = exp(-t/b)/2``, so ``t = b·ln(G/(2p))``, ≈ 16.1b for 20
  groups; Gaussian ``t = σ·Φ⁻¹(1 - p/G)``, ≈ 5.3σ for 20 groups) such that an empty
  group's noisy count exceeds it with probability ``p/G``, ``p = 10⁻⁶``, and so any
  of an answer's empty groups with probability at most ``p`` (a SUM, tested on both
  sides, leaves the band with probability ``p/G`` too). Its row is marked
  ``near_zero``, and a policy may suppress such groups. ``t`` is a function of the
  public noise scale and the public number of groups only; a merged group's uses
  Chebyshev at the same level. The mark says the row may be noise; it does not
  blank figures the answer's own 95% can still tell: an AVG keeps its value wherever
  its count's interval excludes 0 (its interval then holds the truth at 95%, as any
  row's does), a quantile wherever its count's interval at 99% does; elsewhere they
  have none, their interval the bounds.

The intervals cover the answer on the clamped, bounded data; clamping and
contribution bounding can bias that answer against the raw data, and the answer's
notes say which bounds applied. Where a COUNT's or SUM's removed total is told from
zero, each row also gives its estimate with its part of that total put back, about
the question asked (:func:`removed_shares`, :func:`estimate_rows`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from entrepot.privacy.answer import OTHER, Estimate, Row
from entrepot.privacy.mechanisms import Mechanism
from entrepot.privacy.sql.query import Aggregate
from entrepot.privacy.sql.rewrite import OVER, Derived, Quantity
from entrepot.standards.schema import Standard

__all__ = [
    "NEGLIGIBLE",
    "PUT_BACK",
    "Noisy",
    "PutBack",
    "estimate_rows",
    "near_zero_alpha",
    "removed_shares",
    "share_of",
    "size_name",
    "with_derived",
]

_ALPHA = 0.05
# The probability that any empty group of one answer escapes the near-zero mark, each
# of its G groups tested at NEGLIGIBLE / G: negligible over every answer the exchange
# will give. At 10⁻⁶ per group instead, one of the accuracy benchmark's 27,429
# showings of empty groups (its answers of up to 440 groups) came out unmarked.
NEGLIGIBLE = 1e-6
# The probability that a removed total of zero is put back. Putting back noise costs
# accuracy, not coverage (the put-back interval's low end is the bounded total's), so
# a test at 1% suffices: at 10⁻⁶ the demo's COUNT(*) (43% of its rows removed) was
# left biased at every ε up to 1.
PUT_BACK = 0.01
# The probability that an answer with no unit above the removed total's cap withholds
# its put-back anyway. The test's power is what keeps the put-back's interval honest,
# so it runs at 5%, not 1%: on the skewed benchmark's COUNT(*) at ε 1 (32 units
# above the cap, noise of scale 4) a put-back then escapes it about once in 600
# answers, at 1% once in 120.
ASSUMED = 0.05
Halfwidth = Callable[[str, float], float]


class Noisy:
    """The noisy quantities of one query: a vector per quantity, aligned with groups.

    ``derived`` SUMs (:class:`~entrepot.privacy.sql.rewrite.Derived`) get a vector
    too, read from the two they are made of; their half-widths are those of a sum of
    the two noises.
    """

    def __init__(
        self,
        mechanism: Mechanism,
        quantities: Sequence[Quantity],
        scales: dict[str, float],
        vectors: Mapping[str, Sequence[float]],
        derived: Sequence[Derived] = (),
    ) -> None:
        self.mechanism = mechanism
        self.quantities = {(q.kind, q.column): q for q in quantities}
        self.scales = scales
        self._kinds = {q.name: q.kind for q in quantities}
        # Each value as a weighted sum of released quantities.
        self.parts: dict[str, tuple[tuple[str, float], ...]] = {
            q.name: ((q.name, 1.0),) for q in quantities
        }
        self._sums: dict[str | None, str] = {}
        for d in derived:
            self.parts[d.name] = ((d.centred, 1.0), (d.count, d.midpoint))
            self._kinds[d.name] = "sum"
            self._sums[d.column] = d.name
        self.derived = tuple(derived)
        self.vectors = with_derived(vectors, self.derived)

    def name(self, kind: str, column: str | None) -> str:
        if kind == "sum" and column in self._sums:
            return self._sums[column]
        return self.quantities[(kind, column)].name

    def kind(self, name: str) -> str:
        return self._kinds[name]

    def count_name(self, column: str | None, standard: Standard) -> str:
        if column is None or standard.field(column).required:
            return self.name("rows", None)
        return self.name("values", column)

    def halfwidth(self, merged: int) -> Halfwidth:
        @functools.cache
        def width(name: str, alpha: float) -> float:
            scales = [abs(weight) * self.scales[part] for part, weight in self.parts[name]]
            if merged <= 1:
                return self.mechanism.combined_halfwidth(scales, alpha)
            variance = math.fsum(self.mechanism.variance(s) for s in scales)
            return math.sqrt(merged * variance / alpha)

        return width


def with_derived(
    vectors: Mapping[str, Sequence[float]], derived: Sequence[Derived]
) -> dict[str, Any]:
    """``vectors`` as float arrays, with each derived SUM's read from its two parts."""
    out = {name: np.asarray(vector, dtype=np.float64) for name, vector in vectors.items()}
    for d in derived:
        if d.centred in out and d.count in out:
            out[d.name] = out[d.centred] + d.midpoint * out[d.count]
    return out


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
        elif aggregate.function == "quantile":
            # The quantile's own estimates come from its selection; its count sizes it.
            assert aggregate.column is not None, "a quantile always names its measure"
            name = aggregate.name
            count = noisy.count_name(aggregate.column, standard)
            low, high = standard.field(aggregate.column).bounds or (low, high)
        else:
            assert aggregate.column is not None, "SUM and AVG always name their measure"
            if aggregate.function == "avg":
                name = noisy.name("centred", aggregate.column)
                count = noisy.count_name(aggregate.column, standard)
            else:
                name = noisy.name("sum", aggregate.column)
            low, high = standard.field(aggregate.column).bounds or (low, high)
        out.append((aggregate.function, name, count, low, high))
    return out


Columns = list[tuple[list[float | None], list[float], list[float]]]
Quantiles = dict[str, tuple[list[float | None], list[float], list[float]]]
_COUNTS = ("units", "rows", "values")


def size_name(quantities: Iterable[Quantity]) -> str | None:
    """The quantity that tells a group from an empty one: its count of units, else of
    rows, else of a column's values, else a SUM; None without any."""
    ranked = sorted(quantities, key=lambda q: (_rank(q.kind), q.column or ""))
    return ranked[0].name if ranked else None


def _rank(kind: str) -> int:
    return _COUNTS.index(kind) if kind in _COUNTS else len(_COUNTS)


def near_zero_alpha(kind: str, groups: int) -> float:
    """The two-sided level whose half-width an empty group's size (of ``kind``) leaves
    with probability :data:`NEGLIGIBLE` over ``groups``, the answer's public groups: so
    that none of its empty groups leaves it but with probability :data:`NEGLIGIBLE`. A
    count is tested on one side, a SUM on both."""
    level = NEGLIGIBLE / max(groups, 1)
    return 2 * level if kind in _COUNTS else level


def _near_zero(
    noisy: Noisy, size: str | None, vectors: dict[str, Any], width: Halfwidth, groups: int
) -> Any:
    """Per group, whether its size lies within the near-zero threshold of 0, the
    answer having ``groups`` public groups."""
    if size is None:
        return np.zeros(len(next(iter(vectors.values()), [])), dtype=bool)
    kind = noisy.kind(size)
    v, h = vectors[size], width(size, near_zero_alpha(kind, groups))
    if kind in _COUNTS:
        return v - h <= 0.0
    return (v - h <= 0.0) & (v + h >= 0.0)


def _columns(
    plan: Sequence[Recipe],
    vectors: dict[str, Any],
    width: Halfwidth,
    near: Any,
    quantiles: Quantiles | None = None,
) -> Columns:
    """Per aggregate, the value, low and high of every group, as Python floats.

    One array operation per step over all groups; each ``np.where`` keeps the exact
    choice (and the sign of a zero) of the scalar ``max``/``min`` it stands for, so
    the answer's bytes are those of a group-by-group computation. An AVG has no value
    where its count's interval reaches 0 (its interval is then the bounds: nothing is
    known), whether or not its row is ``near`` zero. ``quantiles`` holds each
    quantile's selected values and intervals for these groups; without it (a merged
    row) a quantile is unknown and its interval is the measure's bounds.
    """
    out: Columns = []
    groups = len(near)
    for function, name, count_name, low, high in plan:
        if function == "quantile":
            if quantiles is None:
                out.append(([None] * groups, [low] * groups, [high] * groups))
                continue
            out.append(quantiles[name])
            continue
        v = vectors[name]
        if function in ("count", "count_distinct"):
            # A count is never negative: flooring the noisy value at 0 is free
            # post-processing and keeps it inside its (floored) interval.
            h = width(name, _ALPHA)
            columns = (_floor(v), _floor(v - h), _floor(v + h))
        elif function == "sum":
            h = width(name, _ALPHA)
            columns = (v, v - h, v + h)
        else:
            value, lo, hi, unknown = _average(
                v, vectors[count_name], name, count_name, low, high, width
            )
            hidden = unknown.tolist()
            shown = [None if h else x for x, h in zip(value.tolist(), hidden, strict=True)]
            out.append((shown, lo.tolist(), hi.tolist()))
            continue
        out.append((columns[0].tolist(), columns[1].tolist(), columns[2].tolist()))
    return out


@dataclass(frozen=True)
class PutBack:
    """What bounding removed from one aggregate, told from zero: the noisy total
    ``removed`` over all groups, the high end ``high`` of its interval, and whether
    it is ``whole`` (no unit above the cap it counts up to: else what the units above
    it lost is unknown, and so is a put-back interval's high end)."""

    removed: float
    high: float
    whole: bool


def removed_shares(
    aggregates: Sequence[Aggregate],
    noisy: Noisy,
    standard: Standard,
    lost: Noisy,
    over: Noisy | None = None,
    *,
    whole_units: bool = False,
    ratio: float | None = None,
) -> tuple[dict[str, Estimate], dict[str, PutBack]]:
    """Per aggregate, the share of its quantity that contribution bounding removed;
    and, for a COUNT or SUM whose removed part is told from zero, what
    :func:`estimate_rows` puts back into each group.

    ``lost`` holds each bounded quantity's noisy total removed (over all groups, a
    vector of one) with its noise scale; a derived SUM's is read from its two parts'.
    The share is ``E / (B + E)``, ``B`` the sum of the
    noisy groups; its interval takes ``E`` and ``B`` at level α/2 each (Bonferroni),
    ``B``'s half-width by Chebyshev over the groups. An AVG reports the share of the
    rows (or values) it averages over.

    ``E`` is put back only where it is told from zero at its own noise: above the
    half-width a removed total of zero exceeds with probability :data:`PUT_BACK`
    (and only where what was removed cannot be negative: a count, or a SUM of a
    measure bounded below by 0). Elsewhere the put-back's noise would outweigh what
    it corrects, and the bounded estimates stand alone, their intervals about the
    bounded data, the share beside them. The choice reads the noisy ``E`` and public
    scales only: post-processing.

    ``E`` counts each unit's removed rows up to ``REMOVED_CAP·R``: it is whole only if
    no unit has more than ``(REMOVED_CAP + 1)·R`` rows. ``over`` holds the noisy count
    of the units above that (:data:`~entrepot.privacy.sql.rewrite.OVER`); where it is
    told from zero (one-sided, at :data:`ASSUMED`), or is not counted, the put-back
    is not whole. Distinct units are whole when ``whole_units``: no unit can be in
    more groups than the removed total counts (a public fact of the groups).

    ``ratio`` is the version's removed rows over its kept rows, released at publish,
    for an answer over all of the version's rows (no WHERE). A COUNT of rows or
    values, or a SUM that cannot be negative, whose own removed total is not told from
    zero (or not bought) puts back ``ratio`` times its bounded groups instead: what the
    version's bound removed, on the assumption that the rows removed are like the rows
    kept, in value and in where they fall. Its high end is its own removed total's,
    where bought and whole, and unknown elsewhere.
    """
    shares: dict[str, Estimate] = {}
    put_back: dict[str, PutBack] = {}
    whole = over is not None and float(over.vectors[OVER.name][0]) <= over.halfwidth(1)(
        OVER.name, 2 * ASSUMED
    )
    for aggregate, (function, name, count_name, low, _high) in zip(
        aggregates, recipes(aggregates, noisy, standard), strict=True
    ):
        quantity = count_name if function in ("avg", "quantile") else name
        # what was removed is never negative (a count, or a sum of values >= 0)
        signless = function in ("count", "count_distinct") or (function == "sum" and low >= 0)
        high, complete = math.inf, False
        if quantity in lost.vectors:
            groups = noisy.vectors[quantity]
            spread = noisy.halfwidth(len(groups))(quantity, _ALPHA / 2)
            removed_width = lost.halfwidth(1)
            margin = removed_width(quantity, _ALPHA / 2)
            removed = float(lost.vectors[quantity][0])
            shares[aggregate.name] = share_of(removed, margin, math.fsum(groups), spread)
            # what was removed is never below 0, so neither is its high end
            high = max(removed + margin, 0.0)
            complete = whole_units if function == "count_distinct" else whole
            # a one-sided test of E > 0: its two-sided half-width at twice the level
            if signless and removed > removed_width(quantity, 2 * PUT_BACK):
                put_back[aggregate.name] = PutBack(removed, high, complete)
                continue
        if ratio is not None and signless and function != "count_distinct":
            kept = math.fsum(_floor(noisy.vectors[quantity]).tolist())
            put_back[aggregate.name] = PutBack(max(min(ratio * kept, high), 0.0), high, complete)
    return shares, put_back


def _put_back(
    plan: Sequence[Recipe],
    aggregates: Sequence[Aggregate],
    vectors: dict[str, Any],
    put_back: Mapping[str, PutBack],
) -> dict[str, Any]:
    """Per aggregate put back, each public group's part of the removed total: in
    proportion to its noisy value floored at 0 (what bounding removed from a group is
    about its share of what it kept, where units are alike across groups)."""
    parts = {}
    for aggregate, (_function, name, *_rest) in zip(aggregates, plan, strict=True):
        back = put_back.get(aggregate.name)
        if back is None:
            continue
        bounded = _floor(vectors[name])
        total = math.fsum(bounded.tolist())
        if total > 0:
            parts[aggregate.name] = back.removed * bounded / total
    return parts


def _asked(
    plan: Sequence[Recipe],
    aggregates: Sequence[Aggregate],
    vectors: dict[str, Any],
    parts: Mapping[str, Any],
    put_back: Mapping[str, PutBack],
    width: Halfwidth,
) -> list[list[Estimate | None]]:
    """Per aggregate, each group's estimate with its part of the removed total put
    back (None where nothing is put back), about the question asked.

    The value is ``B + E·w``; the interval ``[B−, B+ + E+]``, each end at α/4 on its
    side: the removed part is never negative, so the bounded value's low end is a
    low end of the value asked for; no group lost more than all groups did, so
    ``E+`` bounds its removed part above, wherever units are alike or not. Where the
    removed total is not whole, the high end is unknown (None).
    """
    groups = len(next(iter(vectors.values()), []))
    out: list[list[Estimate | None]] = []
    for aggregate, (function, name, *_rest) in zip(aggregates, plan, strict=True):
        part = parts.get(aggregate.name)
        back = put_back.get(aggregate.name)
        if part is None or back is None:
            out.append([None] * groups)
            continue
        v, h = vectors[name], width(name, _ALPHA / 2)
        value, lo, hi = v + part, v - h, v + h + back.high
        if function != "sum":
            value, lo, hi = _floor(value), _floor(lo), _floor(hi)
        highs = hi.tolist() if back.whole else [None] * groups
        out.append(list(map(Estimate, value.tolist(), lo.tolist(), highs)))
    return out


def share_of(removed: float, margin: float, kept: float, spread: float) -> Estimate:
    """``removed / (kept + removed)`` and its interval from the two intervals."""

    def ratio(part: float, rest: float, empty: float) -> float:
        part, rest = max(part, 0.0), max(rest, 0.0)
        return part / (rest + part) if rest + part > 0 else empty

    value = ratio(removed, kept, 0.0)
    lo = ratio(removed - margin, kept + spread, 0.0)
    hi = ratio(removed + margin, kept - spread, 1.0)
    return Estimate(value, min(lo, value), max(hi, value))


def _floor(v: Any) -> Any:
    return np.where(v > 0.0, v, 0.0)


def _clamp(v: Any, low: float, high: float) -> Any:
    """``min(max(v, low), high)`` elementwise."""
    v = np.where(low > v, low, v)
    return np.where(high < v, high, v)


def _average(
    total: Any,
    count: Any,
    total_name: str,
    count_name: str,
    low: float,
    high: float,
    width: Halfwidth,
) -> tuple[Any, Any, Any, Any]:
    """AVG = m + S / COUNT per group, ``S`` the sum of deviations from the bounds'
    midpoint ``m``; its interval spans ``m`` plus the ratios of the two intervals.

    Both ends are clamped into the bounds: when every ratio falls outside them (the
    two intervals missed together, a < 5% event), the interval is the nearer bound.
    The last array says where the count's interval reaches 0: the interval is then
    the bounds and the value unknown (noise over noise is not a figure).
    """
    total_h, count_h = width(total_name, _ALPHA / 2), width(count_name, _ALPHA / 2)
    near, far = count - count_h, count + count_h
    middle = (low + high) / 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = _clamp(middle + total / count, low, high)
        ratios = [middle + t / c for t in (total - total_h, total + total_h) for c in (near, far)]
    smallest, largest = ratios[0], ratios[0]
    for ratio in ratios[1:]:
        smallest = np.where(ratio < smallest, ratio, smallest)
        largest = np.where(ratio > largest, ratio, largest)
    lo = _clamp(smallest, low, high)
    hi = _clamp(largest, low, high)
    # No count, or a count interval reaching 0: the bounds are all that is known.
    unknown = (count <= 0) | (near <= 0)
    value = np.where(count <= 0, middle, value)
    lo = np.where(unknown, low, lo)
    hi = np.where(unknown, high, hi)
    return value, lo, hi, unknown


def _rows(
    keys: Sequence[tuple[Any, ...]],
    columns: Columns,
    near: Any,
    asked: list[list[Estimate | None]],
    *,
    other: bool = False,
) -> list[Row]:
    per_aggregate = [list(map(Estimate, *column)) for column in columns]
    put = any(e is not None for column in asked for e in column)
    backs = list(zip(*asked, strict=True)) if put else [()] * len(keys)
    return [
        Row(key=key, values=tuple(estimates), other=other, near_zero=bool(marked), asked=back)
        for key, marked, back, *estimates in zip(
            keys, near.tolist(), backs, *per_aggregate, strict=True
        )
    ]


def estimate_rows(
    groups: Sequence[tuple[Any, ...]],
    aggregates: Sequence[Aggregate],
    noisy: Noisy,
    standard: Standard,
    *,
    threshold_name: str | None,
    threshold: float,
    merge: bool,
    drop_near_zero: bool = False,
    quantiles: Quantiles | None = None,
    put_back: Mapping[str, PutBack] | None = None,
) -> tuple[list[Row], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows to show, and the keys of suppressed and of merged groups.

    A group is small when its ``threshold_name`` count is under ``threshold``, or,
    with ``drop_near_zero``, when it is near zero (see the module's docstring).
    ``quantiles`` gives, per quantile aggregate, each group's selected value and
    interval (:mod:`entrepot.privacy._quantiles`); merged groups get none.
    ``put_back`` gives, per aggregate, the removed total :func:`removed_shares` told
    from zero: it is shared out over all public groups, shown or not, and each row
    shows its part put back (the merged row, its groups' parts).
    """
    plan = recipes(aggregates, noisy, standard)
    vectors = {name: np.asarray(vector, dtype=np.float64) for name, vector in noisy.vectors.items()}
    put_back = put_back or {}
    parts = _put_back(plan, aggregates, vectors, put_back)
    size = size_name(noisy.quantities.values())
    width = noisy.halfwidth(1)
    near = _near_zero(noisy, size, vectors, width, len(groups))
    below = np.zeros(len(groups), dtype=bool)
    if threshold_name is not None:
        below = vectors[threshold_name] < threshold
    if drop_near_zero:
        below = below | near
    small: list[int] = np.flatnonzero(below).tolist()
    shown = ~below
    kept = {name: vector[shown] for name, vector in vectors.items()}
    keys = [key for key, keep in zip(groups, shown.tolist(), strict=True) if keep]
    mask = shown.tolist()

    def kept_of(part: list[Any]) -> list[Any]:
        return [x for x, keep in zip(part, mask, strict=True) if keep]

    kept_quantiles: Quantiles = {
        name: (kept_of(value), kept_of(lo), kept_of(hi))
        for name, (value, lo, hi) in (quantiles or {}).items()
    }
    columns = _columns(plan, kept, width, near[shown], kept_quantiles)
    kept_parts = {name: part[shown] for name, part in parts.items()}
    asked = _asked(plan, aggregates, kept, kept_parts, put_back, width)
    rows = _rows(keys, columns, near[shown], asked)
    small_keys = [groups[i] for i in small]
    if not merge or not small:
        return rows, small_keys, []
    # A derived SUM of the merged group is read from its merged parts.
    merged = with_derived(
        {
            name: [math.fsum(vector[i] for i in small)]
            for name, vector in noisy.vectors.items()
            if name not in {d.name for d in noisy.derived}
        },
        noisy.derived,
    )
    merged_width = noisy.halfwidth(len(small))
    merged_near = _near_zero(noisy, size, merged, merged_width, len(groups))
    other_key = tuple(OTHER for _ in groups[0])
    columns = _columns(plan, merged, merged_width, merged_near)
    merged_parts = {
        name: np.asarray([math.fsum(part[small].tolist())]) for name, part in parts.items()
    }
    asked = _asked(plan, aggregates, merged, merged_parts, put_back, merged_width)
    other = _rows([other_key], columns, merged_near, asked, other=True)
    return [*rows, *other], [], small_keys
