"""Private quantiles per group: two brackets, then the estimate on a grid refined to them.

A quantile aggregate gets one share of the query's budget, like a SUM, split in three
parts: a tenth each selects a bracket below and above the estimate, and the estimate
the rest (80%; 90% or the whole share where a group draws one bracket or none, see
below). Each selection is OpenDP's noisy max over the weighted quantile score of
every row of the group (:meth:`Mechanism.select_quantile`). The brackets are chosen
first, among the candidates of :func:`candidates` (an even grid over the measure's
public bounds, and points geometric on each side of 0 or of the bound nearest it, so a
value is resolved to a fixed share of itself: 1.2% over the four decades a grid spans).
The estimate is then chosen among the candidates of :func:`refined`, about as many
points again spread over the interval the brackets made (public once they are drawn: a
selection on their output is adaptive sequential composition), so its resolution
follows the interval: a median of 1M rows (``R = 27``) at ε 0.5 gets an interval of
about 295 to 322, whose points lie 0.008% apart, against 1.2% on the bounds' grid.
Every answer and every interval end lies within the measure's bounds.

The split follows what limits each part. The estimate's error is its rank error, of
scale ``R/ε`` rows for a median at ε: it shrinks in proportion to its part. The
brackets only set the interval's width (their rank error enters ``Δ`` below) and so
the estimate's resolution; at a tenth each, a median's interval is the bounds below
about 5,000 values a group at ε 1 with ``R = 3`` and a second quantile in the query
(2,100 with a quarter each; both from the scales). A group whose noisy count is too
small for a bracket draws none, and the tenth it would have spent goes to its
estimate: which brackets a group draws is a function of its noisy count, released
before, so the split is chosen after it (adaptive sequential composition, as the
refined grid), and each of the three splits spends at most the share, linearly in the
rows under pure ε (a unit whose rows fall in groups of different splits spends no
more). No group of the benchmark's demo by district (about 1,300 rows, ``R = 11``)
draws a bracket at ε up to 1; on its bounded data, 50 answers each, its
median error went from 0.040 to 0.032 at ε 0.5 and from 0.018 to 0.017 at ε 1 when
its estimate took the whole share instead of 80% (by age band, 13 to 6,100 rows:
0.024 to 0.0195, 0.013 to 0.012). At ε 0.1 its counts' intervals reach 0 and nothing
is shown; ungrouped (27,650 values) the brackets are drawn from ε 0.5.

The interval (confidence 1 - α, α = 0.05 split as 0.01 + 0.02 + 0.02):

- The selection's rank error: the quantile score of a candidate ``c`` is
  ``|(1-q)·W(x < c) - q·W(x > c)|``, ``W`` the weight of the values, which moves by at
  most a value's weight (1 at most) when it moves past ``c``. A candidate is selected
  with probability at most ``exp(-(score - best)/s)`` (OpenDP's scale ``s``), so all
  but ``β`` of the time the selected score is within ``t = s·ln(K/β)`` of the best,
  ``K`` candidates: ``t`` rows of rank.
- The group's size ``n`` is not public: its noisy count (the measure's count, already
  part of the answer) gives ``n_lo``, the lower end of its interval at level 0.01.
- Each bracket is selected at level ``q ∓ Δ`` with ``Δ = (t + 1) / n_lo`` (``t`` at
  0.02), so its rank error cannot carry it past the ``q`` quantile; it is then widened
  to the next grid point out, since the truth and the selected point may share a cell.
  Brackets are priced at the level half-way from ``q`` to the nearer of 0 and 1, so
  one scale fits them; a bracket whose level falls beyond, and both when
  ``n_lo <= 0``, become the measure's bound. Should the two cross (only when one has
  missed), the interval runs from the lower to the higher.
- The estimate is chosen among points of the interval, so it lies inside it. Where
  ``n_lo <= 0`` the group cannot be told from an empty one at 99%: nothing is
  selected, the estimate is not shown and the interval is the bounds, as for AVG.

The interval covers the quantile of the weighted bounded data: every value clamped to
the bounds, at its row's weight ``min(1, R/n_u)`` (``n_u`` its unit's rows), as counts
and sums weight it, so the group's noisy count is the noisy total of the same weights.
Nothing is drawn at random but by OpenDP: the same data give the same scores.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from entrepot.privacy.mechanisms import QUANTILE_CANDIDATES, Mechanism, Weighted

__all__ = [
    "QuantileSpec",
    "anchor",
    "candidates",
    "estimate",
    "neighbours",
    "refined",
    "spec",
]

# The confidence split: the group size's interval, then each bracket's selection.
_ALPHA_SIZE = 0.01
_ALPHA_BRACKET = 0.02
# The grid's finest step away from its anchor, as a share of the bounds' range, and
# the points of the even grid it includes.
_FINEST = 1e-4
_EVEN = 201
# The estimate's part of the quantile's share; the two brackets split the rest.
_POINT = 0.8


def anchor(low: float, high: float) -> float:
    """The point of ``[low, high]`` nearest 0, where the grid is densest."""
    return float(min(max(0.0, low), high))


def candidates(low: float, high: float) -> tuple[float, ...]:
    """The public grid a quantile of a measure bounded by ``[low, high]`` is chosen on.

    An even grid of 201 points (0.5% of the range apart: round figures, where tied
    values pile up, are candidates), and about 800 more, geometric on each side of
    :func:`anchor` (0, or the bound nearest it): offsets from ``(high - low)·10⁻⁴``
    to the bound, so each lies a fixed ratio beyond the last and a value is resolved
    to within a fixed share of itself, small or large. A side gets points in
    proportion to the decades it spans. A function of the public bounds only.
    """
    if high <= low:
        return (float(low),)
    floor = (high - low) * _FINEST
    if floor <= 0.0:  # a range so narrow its ten-thousandth underflows: its two ends
        return (float(low), float(high))
    centre = anchor(low, high)
    sides = [(sign, span) for sign, span in ((-1.0, centre - low), (1.0, high - centre))]
    sides = [(sign, span) for sign, span in sides if span > floor]
    decades = [math.log(span / floor) for _, span in sides]
    # the even grid first: values piled on round figures (100, 700) are candidates
    # themselves, which a tie needs (every other candidate scores alike)
    last = _EVEN - 1
    grid = {low + (high - low) * i / last for i in range(last)} | {centre, float(high)}
    for (sign, span), decade in zip(sides, decades, strict=True):
        count = max(round((QUANTILE_CANDIDATES - _EVEN) * decade / sum(decades)), 2)
        for i in range(count):
            point = centre + sign * floor * (span / floor) ** (i / (count - 1))
            grid.add(min(max(point, float(low)), float(high)))
    return tuple(sorted(grid))


def refined(grid: Sequence[float], low: float, high: float) -> tuple[float, ...]:
    """The candidates the estimate is chosen among once its interval ``[low, high]`` is
    drawn, and the points of ``grid`` inside it (round figures, where tied values pile
    up, stay candidates).

    Where both ends lie on one side of 0, :data:`QUANTILE_CANDIDATES` points geometric
    between them, each ``(high/low)^(1/1000)`` beyond the last: 0.05% over [250, 400],
    0.7% over the bounds [5, 5,000]. Where the interval holds 0 (the bounds, or one
    bracket and the bound 0), :func:`candidates` of the interval. A function of
    public numbers only: the bounds and the brackets drawn.
    """
    if high <= low:
        return (float(low),)
    if low > 0 or high < 0:
        near, far = (low, high) if low > 0 else (high, low)
        last = QUANTILE_CANDIDATES - 1
        points = {near * (far / near) ** (i / last) for i in range(last)} | {far}
        points = {min(max(p, low), high) for p in points}
    else:
        points = set(candidates(low, high))
    start, stop = bisect.bisect_left(grid, low), bisect.bisect_right(grid, high)
    return tuple(sorted(points.union(grid[start:stop])))


def neighbours(grid: Sequence[float], point: float) -> tuple[float, float]:
    """The grid points on either side of ``point``, one of them (an end keeps itself)."""
    index = min(bisect.bisect_left(grid, point), len(grid) - 1)
    return grid[max(index - 1, 0)], grid[min(index + 1, len(grid) - 1)]


@dataclass(frozen=True)
class QuantileSpec:
    """One quantile aggregate: its measure, level, bounds and selection scales."""

    name: str
    column: str
    level: float
    low: float
    high: float
    bracket_scale: float
    # The estimate's scale where 0, 1 or 2 brackets are drawn: it spends what the
    # brackets a group does not draw leave of the share.
    estimate_scales: tuple[float, float, float]

    @property
    def scale(self) -> float:
        """The estimate's scale beside both brackets: the largest it is drawn at."""
        return self.estimate_scales[2]

    @property
    def grid(self) -> tuple[float, ...]:
        return candidates(self.low, self.high)

    def rank_error(self, scale: float, alpha: float) -> float:
        """Rows of rank the selection at ``scale`` misses by, all but ``alpha`` of the time."""
        return scale * math.log(len(self.grid) / alpha)


def spec(
    mechanism: Mechanism,
    name: str,
    column: str,
    level: float,
    bounds: tuple[float, float],
    *,
    rows: int,
    share: float,
) -> QuantileSpec:
    """The scales of one quantile aggregate spending ``share``, ``rows`` per unit."""
    # A tenth for each bracket, the rest for the estimate: the estimate's rank error
    # shrinks with its part; the brackets' only widens the interval (see the module's
    # docstring). A bracket a group does not draw leaves its tenth to the estimate.
    point, bracket = share * _POINT, share * (1 - _POINT) / 2

    def estimate_scale(part: float) -> float:
        return mechanism.quantile_scale(rows, part, level)

    return QuantileSpec(
        name=name,
        column=column,
        level=level,
        low=float(bounds[0]),
        high=float(bounds[1]),
        bracket_scale=mechanism.quantile_scale(rows, bracket, _edge(level)),
        # by brackets drawn: none (the whole share), one, both (80%)
        estimate_scales=(
            estimate_scale(share),
            estimate_scale(point + bracket),
            estimate_scale(point),
        ),
    )


def _edge(level: float) -> float:
    """The level brackets are priced at: half-way from ``level`` to the nearer of 0 and
    1. The privacy map grows with ``max(level, 1 - level)``, so the one scale fits every
    level in ``[edge, 1 - edge]``; a bracket beyond is the measure's bound."""
    return min(level, 1 - level) / 2


def estimate(
    mechanism: Mechanism,
    quantile: QuantileSpec,
    values: Sequence[Weighted],
    size: Any,
    size_scale: float,
) -> tuple[list[float | None], list[float], list[float]]:
    """Per group, the selected quantile (None where none is drawn) and its interval:
    the brackets first, on the public grid, then the estimate among :func:`refined`
    points of the interval they make, at the scale the brackets drawn leave it.

    ``values`` holds each group's weighted values (possibly none); ``size`` the
    noisy count of each group and ``size_scale`` its noise scale. A group whose count's
    interval (at 99%) reaches 0 cannot be told from an empty one: it gets no
    selection, and the bounds. Which selections are drawn, and at which scales,
    depends on the noisy counts only, never on the data.
    """
    grid = quantile.grid
    slack = quantile.rank_error(quantile.bracket_scale, _ALPHA_BRACKET) + 1.0
    margin = mechanism.halfwidth(size_scale, _ALPHA_SIZE)
    edge = _edge(quantile.level)
    value: list[float | None] = []
    lo, hi = [], []
    sizes = np.asarray(size, dtype=np.float64).tolist()
    for data, noisy_size in zip(values, sizes, strict=True):
        low, high = quantile.low, quantile.high
        n_lo = noisy_size - margin
        if n_lo <= 0:
            value.append(None)
            lo.append(low)
            hi.append(high)
            continue
        delta = slack / n_lo
        below, above = quantile.level - delta, quantile.level + delta
        drawn = 0
        if below > edge:
            picked = mechanism.select_quantile(data, grid, below, quantile.bracket_scale)
            low = neighbours(grid, picked)[0]
            drawn += 1
        if above < 1 - edge:
            picked = mechanism.select_quantile(data, grid, above, quantile.bracket_scale)
            high = neighbours(grid, picked)[1]
            drawn += 1
        low, high = min(low, high), max(low, high)
        fine = refined(grid, low, high)
        scale = quantile.estimate_scales[drawn]
        value.append(mechanism.select_quantile(data, fine, quantile.level, scale))
        lo.append(low)
        hi.append(high)
    return value, lo, hi
