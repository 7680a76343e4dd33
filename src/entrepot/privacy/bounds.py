"""The rows-per-unit bound a version's own rows suggest, estimated privately at publish.

Bounding each privacy unit to ``R`` rows trades bias (rows of units above ``R`` are
weighted down) against noise (every sensitivity is proportional to ``R``). A fixed
``R`` fits no dataset in particular; the data's own distribution of rows per unit
does, but it is private. So a publish releases one differentially private quantile
of it, with OpenDP's exponential-mechanism quantile (``make_private_quantile``,
Smith 2011, permute-and-flip of McKenna & Sheldon 2020) over a public grid of
candidates::

    per unit: n = its number of rows in the version (the stored per-unit count)
    U = the number of units + Laplace(1 / ε_U),  ε_U = UNITS_SHARE · bound_epsilon
    q = the highest of LEVELS that U units resolve (level_for)
    R = DP quantile q of the n's, among CANDIDATES, at ε = bound_epsilon - ε_U

The level is the 95th percentile wherever the data is large enough for the mechanism
to find it. Every candidate above the data's largest count scores ``(1 - q)·units``
worse than the best, so with few units at a small ε the mechanism lands above the
data more often than not (at ε 0.1 and the 95th, 97% of the time for 200 units):
a bound far above the data, whose noise then swamps every answer. So the noisy
count of units chooses, before the quantile is drawn, the highest level at which the
candidates above the data take at most :data:`MISS` of the draw.

Adding or removing one unit adds or removes one n and moves the count of units by 1:
the symmetric distance the mechanisms are built for, so the two releases together
are ``bound_epsilon``-DP (sequential composition; the level is post-processing of
the count) for the same neighbouring relation as every answer, and their ε is
debited from the dataset's global cap. Which candidate comes out depends on the data
only through the scores OpenDP computes; the grid itself is public. The bound and its
level are then public: queries' noise scales follow from them.

Beside it, the same publish releases how many rows that bound removes, at the same
ε again (adaptive sequential composition: ``R`` is public once drawn)::

    K = Σ over units of min(n, R)                          (the rows bounding keeps)
    E = Σ over units of min(max(n - R, 0), REMOVED_CAP·R)  (the rows it removes)
    (K, E) + Laplace((R + REMOVED_CAP·R) / ε) on each

counting each unit's removed rows up to the cap queries count them to
(:data:`~entrepot.privacy.sql.rewrite.REMOVED_CAP`), so one unit moves the pair by
at most ``R + REMOVED_CAP·R`` in L1, the sensitivity OpenDP's privacy map is checked
with. The share ``E / (K + E)`` is read from the two noisy totals: the version's row
count is not public, so it cannot be the denominator. An answer that could not tell
its own removed part from zero (averages and quantiles never put one back; a count's
removed rows are at most ``E``) states this share of the version's rows instead of
spending its own ε on one. A COUNT or SUM that cannot tell its own removed part from
zero puts back ``E / K`` of what it kept: an estimate resting on the assumption that
the rows removed are like the rows kept.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from entrepot.errors import InvalidInput
from entrepot.privacy.policy import Policy

if TYPE_CHECKING:
    from entrepot.privacy.answer import Estimate

__all__ = [
    "CANDIDATES",
    "FALLBACK_ROWS_PER_UNIT",
    "LEVELS",
    "MISS",
    "QUANTILE",
    "UNITS_SHARE",
    "Bound",
    "Removal",
    "RowsPerUnit",
    "bound_in_force",
    "estimate_removed_rows",
    "estimate_rows_per_unit",
    "level_for",
    "percentile",
    "quantile_release",
]

# The 95th percentile of rows per unit: a unit above it is weighted down, so about
# one unit in twenty loses rows. At the 90th the skewed benchmark lost twice the rows
# to bounding (docs/privacy.md has the figures); higher up the quantile moves into
# the sparse tail, where the mechanism's choice is coarse and the noise grows with R.
QUANTILE = 0.95
# The levels a release may estimate, highest first: where too few units make the
# 95th unresolvable, the highest one down that is (see level_for).
LEVELS = (QUANTILE, 0.9, 0.8, 0.7, 0.6, 0.5)
# The part of bound_epsilon the count of units takes; the quantile gets the rest.
UNITS_SHARE = 0.1
# The most of the quantile's draw the candidates above the data may take, and the
# confidence the count of units' low end is held at.
MISS = 0.05
# Every count up to 64, then steps of 25% up to 1,000: 76 bounds, so the mechanism's
# union over candidates costs little accuracy (ln 76 ≈ 4.3). A count between two
# steps above 64 is bounded by the step above it.
CANDIDATES: tuple[int, ...] = tuple(
    sorted(set(range(1, 65)) | {round(64 * 1.25**i) for i in range(1, 13)})
)
# The bound of a version without an estimate (published before estimates existed,
# or under a policy with bound_epsilon 0): the largest bound the earlier fixed
# defaults gave (5 rows in each of 3 groups).
FALLBACK_ROWS_PER_UNIT = 15


@dataclass(frozen=True)
class Bound:
    """The rows-per-unit bound queries on a version use, and where it comes from:
    ``policy`` (the provider's), ``estimate`` (the version's own) or ``fallback``."""

    rows: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"rows_per_unit": self.rows, "source": self.source}


def bound_in_force(policy: Policy, estimate: int | None) -> Bound:
    """The bound of a version whose estimate is ``estimate`` (None: it has none)."""
    if policy.rows_per_unit is not None:
        return Bound(policy.rows_per_unit, "policy")
    if estimate is not None:
        return Bound(estimate, "estimate")
    return Bound(FALLBACK_ROWS_PER_UNIT, "fallback")


@dataclass(frozen=True)
class RowsPerUnit:
    """A released rows-per-unit bound and the quantile level it estimates."""

    rows: int
    level: float


def estimate_rows_per_unit(histogram: Mapping[int, int], epsilon: float) -> RowsPerUnit:
    """A ``epsilon``-DP estimate of a high quantile of rows per unit: the
    :data:`QUANTILE`, or the highest of :data:`LEVELS` the data's noisy count of units
    resolves (:func:`level_for`).

    ``histogram`` maps a number of rows to how many units have that many. Raises
    :class:`InvalidInput` for an ε that is not a finite number > 0.
    """
    _check_epsilon(epsilon)
    import numpy as np

    from entrepot.privacy import mechanisms

    counts = np.repeat(
        np.fromiter(histogram.keys(), dtype=np.int64, count=len(histogram)),
        np.fromiter(histogram.values(), dtype=np.int64, count=len(histogram)),
    )
    laplace = mechanisms.get("laplace")
    scale = laplace.scale(1.0, epsilon * UNITS_SHARE, 1)
    (units,) = laplace.release([float(len(counts))], scale)
    # the count's low end, one-sided at MISS (halfwidth is two-sided at its alpha)
    low = units - laplace.halfwidth(scale, 2 * MISS)
    quantile = epsilon * (1 - UNITS_SHARE)
    level = level_for(low, quantile)
    # An int64 array crosses into OpenDP as one buffer (0.1 s for 2M units, measured),
    # a Python list value by value (3 s).
    return RowsPerUnit(int(quantile_release(quantile, level)[0](counts)), level)


def percentile(level: float) -> str:
    """How a level is named to people: ``95th percentile``, ``50th percentile``."""
    return f"{round(level * 100)}th percentile"


def level_for(units: float, epsilon: float) -> float:
    """The highest of :data:`LEVELS` whose quantile, released at ``epsilon`` over at
    least ``units`` units, lands above every unit's count at most :data:`MISS` of the
    time (the lowest level where none does).

    A candidate above the data scores ``(1 - q)·units`` worse than the best, so each is
    drawn with at most ``exp(-(1 - q)·units / s)`` times the best's chance, ``s`` the
    mechanism's scale: the level holds where that times the candidates stays under
    ``MISS``. A function of public numbers: the noisy count, ε and the grid.
    """
    for level in LEVELS:
        scale = quantile_release(epsilon, level)[1]
        if len(CANDIDATES) * math.exp(-(1 - level) * max(units, 0.0) / scale) <= MISS:
            return level
    return LEVELS[-1]


@functools.lru_cache(maxsize=64)
def quantile_release(epsilon: float, level: float) -> tuple[Any, float]:
    """OpenDP's quantile of rows per unit at ``level`` spending ``epsilon`` (a
    measurement taking the units' counts as an int64 array), and its scale (in units
    of rank: a candidate's chance falls by ``e`` per unit of score)."""
    # OpenDP loads only for a publish that estimates: reading a policy needs none of it.
    import opendp.prelude as dp

    dp.enable_features("contrib")

    def make(scale: float) -> Any:
        return dp.m.make_private_quantile(
            dp.vector_domain(dp.atom_domain(T="i64")),
            dp.symmetric_distance(),
            dp.max_divergence(),
            candidates=list(CANDIDATES),
            alpha=level,
            scale=scale,
        )

    # The smallest scale whose privacy map, checked by OpenDP, fits ε for one unit.
    scale = dp.binary_search_param(make, d_in=1, d_out=epsilon)
    return make(scale), float(scale)


@dataclass(frozen=True)
class Removal:
    """The rows a version's bound keeps and removes, released at publish: two noisy
    totals and the Laplace scale of each one's noise."""

    kept: float
    removed: float
    scale: float

    def share(self, alpha: float = 0.05) -> Estimate:
        """``removed / (kept + removed)``, with its interval at confidence ``1 - alpha``
        (``alpha / 2`` for each total), within [0, 1]."""
        from entrepot.privacy._post import share_of

        margin = self._margin(alpha / 2)
        return share_of(self.removed, margin, self.kept, margin)

    def ratio(self) -> float | None:
        """``removed / kept`` (None where either noisy total is at most 0: nothing to
        put back, or nothing to put it back on)."""
        if self.kept <= 0 or self.removed <= 0:
            return None
        return self.removed / self.kept

    def most(self, alpha: float = 0.05) -> float:
        """The high end of the removed rows at confidence ``1 - alpha`` (one-sided)."""
        return self.removed + self._margin(2 * alpha)

    def _margin(self, alpha: float) -> float:
        from entrepot.privacy import mechanisms

        return mechanisms.get("laplace").halfwidth(self.scale, alpha)


def estimate_removed_rows(histogram: Mapping[int, int], bound: int, epsilon: float) -> Removal:
    """A ``epsilon``-DP estimate of the rows bounding each unit to ``bound`` keeps and
    of those it removes (each unit's counted up to ``REMOVED_CAP·bound``)."""
    from entrepot.privacy import mechanisms
    from entrepot.privacy.sql.rewrite import REMOVED_CAP

    _check_epsilon(epsilon)
    cap = REMOVED_CAP * bound
    kept = sum(min(n, bound) * units for n, units in histogram.items())
    removed = sum(min(max(n - bound, 0), cap) * units for n, units in histogram.items())
    laplace = mechanisms.get("laplace")
    # one unit of n rows moves the pair by min(n, R) + min(max(n - R, 0), C) <= R + C
    scale = laplace.scale(float(bound + cap), epsilon, 2)
    noisy_kept, noisy_removed = laplace.release([float(kept), float(removed)], scale)
    return Removal(noisy_kept, noisy_removed, scale)


def _check_epsilon(epsilon: float) -> None:
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise InvalidInput(
            f"the ε of a publish's estimates must be a finite number > 0, not {epsilon!r}",
            hint="e.g. contributions.bound_epsilon: 0.1",
        )
