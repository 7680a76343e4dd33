"""Private quantiles per group: OpenDP's selection over a public grid, and an interval.

A quantile aggregate gets one share of the query's budget, like a SUM, split in three
parts: half selects the estimate, a quarter each selects a bracket below and above it. Each
selection is OpenDP's ``make_private_quantile`` over the candidates of
:func:`candidates` (an even grid over the measure's public bounds, and points
geometric on each side of 0 or of the bound nearest it, so a value is resolved to a
fixed share of itself: 1.2% over the four decades a grid spans), so every answer
and every interval end lies within those bounds.

The interval (confidence 1 - α, α = 0.05 split as 0.01 + 0.02 + 0.02):

- The selection's rank error: the quantile score of a candidate ``c`` is
  ``|(1-q)·#(x < c) - q·#(x > c)|``, which moves by at most 1 when one value moves past
  ``c``. A candidate is selected with probability at most ``exp(-(score - best)/s)``
  (OpenDP's scale ``s``), so all but ``β`` of the time the selected score is within
  ``t = s·ln(K/β)`` of the best, ``K`` candidates: ``t`` rows of rank.
- The group's size ``n`` is not public: its noisy count (the measure's count, already
  part of the answer) gives ``n_lo``, the lower end of its interval at level 0.01.
- Each bracket is selected at level ``q ∓ Δ`` with ``Δ = (t + 1) / n_lo`` (``t`` at
  0.02), so its rank error cannot carry it past the ``q`` quantile; it is then widened
  to the next grid point out, since the truth and the selected point may share a cell.
  Brackets are priced at the level half-way from ``q`` to the nearer of 0 and 1, so
  one scale fits them; a bracket whose level falls beyond, and both when
  ``n_lo <= 0``, become the measure's bound.
- The estimate itself lies inside the interval (the ends are widened to it if
  needed). Where ``n_lo <= 0`` the group cannot be told from an empty one at 99%:
  nothing is selected, the estimate is not shown and the interval is the bounds, as
  for AVG.

The interval covers the quantile of the values the mechanism saw: clamped to the
bounds and at most ``R`` rows per unit (the bounded data, as for counts and sums).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from entrepot.privacy.mechanisms import QUANTILE_CANDIDATES, Mechanism

__all__ = ["QuantileSpec", "anchor", "candidates", "estimate", "neighbours", "spec"]

# The confidence split: the group size's interval, then each bracket's selection.
_ALPHA_SIZE = 0.01
_ALPHA_BRACKET = 0.02
# The grid's finest step away from its anchor, as a share of the bounds' range, and
# the points of the even grid it includes.
_FINEST = 1e-4
_EVEN = 201


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
    centre = anchor(low, high)
    floor = (high - low) * _FINEST
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
    scale: float
    bracket_scale: float

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
    # Half for the estimate, a quarter for each bracket: the estimate is what most
    # readers use, and its rank error halves with twice the share.
    point, bracket = share / 2, share / 4
    return QuantileSpec(
        name=name,
        column=column,
        level=level,
        low=float(bounds[0]),
        high=float(bounds[1]),
        scale=mechanism.quantile_scale(rows, point, level, QUANTILE_CANDIDATES),
        bracket_scale=mechanism.quantile_scale(rows, bracket, _edge(level), QUANTILE_CANDIDATES),
    )


def _edge(level: float) -> float:
    """The level brackets are priced at: half-way from ``level`` to the nearer of 0 and
    1. The privacy map grows with ``max(level, 1 - level)``, so the one scale fits every
    level in ``[edge, 1 - edge]``; a bracket beyond is the measure's bound."""
    return min(level, 1 - level) / 2


def estimate(
    mechanism: Mechanism,
    quantile: QuantileSpec,
    values: Sequence[Any],
    size: Any,
    size_scale: float,
) -> tuple[list[float | None], list[float], list[float]]:
    """Per group, the selected quantile (None where none is drawn) and its interval.

    ``values`` holds each group's values (a float array, possibly empty); ``size`` the
    noisy count of each group and ``size_scale`` its noise scale. A group whose count's
    interval (at 99%) reaches 0 cannot be told from an empty one: it gets no
    selection, and the bounds. Which selections are drawn depends on the noisy counts
    only, never on the data.
    """
    grid = quantile.grid
    slack = quantile.rank_error(quantile.bracket_scale, _ALPHA_BRACKET) + 1.0
    margin = mechanism.halfwidth(size_scale, _ALPHA_SIZE)
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
        point = mechanism.select_quantile(data, grid, quantile.level, quantile.scale)
        delta = slack / n_lo
        below, above = quantile.level - delta, quantile.level + delta
        edge = _edge(quantile.level)
        if below > edge:
            picked = mechanism.select_quantile(data, grid, below, quantile.bracket_scale)
            low = neighbours(grid, picked)[0]
        if above < 1 - edge:
            picked = mechanism.select_quantile(data, grid, above, quantile.bracket_scale)
            high = neighbours(grid, picked)[1]
        value.append(point)
        lo.append(min(low, point))
        hi.append(max(high, point))
    return value, lo, hi
