"""Noise mechanisms: OpenDP measurements behind one small protocol, registered by name.

A query's budget is split evenly over the noisy quantities it needs (one vector of
per-group values each; groups compose in parallel, which the sensitivity accounts
for). Each mechanism turns its share into a noise scale for a given sensitivity,
lets OpenDP check the privacy map of the measurement it builds, and draws the
noise with OpenDP's samplers (never Python's ``random`` or numpy). A quantity's
whole vector goes through that one measurement in one call; OpenDP's exact sampler
then costs about 11 µs per value (measured), against about 230 µs per value when each
value gets a call of its own.

- ``laplace`` (pure ε-DP): scale ``b = Δ₁ / ε_q``; the 95% half-width of one noisy
  value is ``b · ln(1/0.05) ≈ 3b``, exact since ``P(|L| > t) = exp(-t/b)``.
- ``gaussian`` (ρ-zCDP, reported as (ε, δ)-DP): the query's (ε, δ) is turned into the
  largest ρ whose zCDP guarantee OpenDP converts to at most ε at δ
  (``make_zCDP_to_approxDP``, the conversion of Canonne, Kamath & Steinke 2020,
  Prop. 12), found by bisection on OpenDP's own privacy profile; the share ``ρ_q``
  gives ``σ = Δ₂ / √(2ρ_q)`` and the half-width ``1.96 σ``. The closed form
  ``ρ = (√(ln(1/δ) + ε) − √ln(1/δ))²`` of Bun & Steinke (2016, Prop. 1.3) is looser:
  OpenDP's conversion allows 25-78% more ρ at ε ∈ [0.1, 1] and δ ∈ [1e-10, 1e-6], so
  σ and the half-width are 10-25% smaller (measured, ``benchmarks/bench_delta.py``).

Quantiles are selected by OpenDP's ``make_noisy_max`` (permute-and-flip under pure ε,
Gumbel noisy max under zCDP, whose bounded range gives ρ = ε²/8) over the weighted
quantile score of public candidates (:class:`Weighted`): the score of Smith (2011)
that OpenDP's ``make_private_quantile`` uses, with each row counted at its weight
``min(1, R/n_u)`` as in the bounded counts and sums, so a unit adds or removes at most
``R`` of weight over all groups and no rows are drawn at random. The candidates are a
grid of :data:`QUANTILE_CANDIDATES` points across the measure's bounds, even and
geometric around 0. Its scale is the smallest whose privacy map at the scores'
sensitivity to one unit (:func:`quantile_sensitivity`) fits in the share, with the
map checked linear (pure ε) so that a unit spreading its rows over several groups
spends no more than one putting them in one group.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import opendp.prelude as dp

from entrepot.errors import EntrepotError, InvalidInput

__all__ = [
    "Gaussian",
    "Laplace",
    "Mechanism",
    "Weighted",
    "get",
    "level_fraction",
    "names",
    "quantile_sensitivity",
]

dp.enable_features("contrib")

# Noise granularity 2^-30: OpenDP samples about twice as fast as at full float
# resolution (13 µs against 30 µs per value, measured), and the coarser lattice
# only adds 2^-30 · n to the privacy map, which the scale search below absorbs.
_K = -30
_MECHANISMS: dict[str, type[Mechanism]] = {}
# A quantile is chosen among about this many points over the measure's bounds: 201
# evenly spaced, the others geometrically from 0
# (:func:`entrepot.privacy._quantiles.candidates`): over four decades each is 1.2%
# beyond the last. OpenDP's selection samples once per
# candidate: on 3,000 values a call took 1.2 ms against 0.7 ms for 201 candidates,
# building it 0.9 ms against 0.4 ms (measured, load average 2.5), and a grouped
# quantile makes up to three calls per group.
QUANTILE_CANDIDATES = 1001


class Mechanism(ABC):
    """A noise family. ``norm`` says which sensitivity (L1 or L2) its scale needs."""

    name: ClassVar[str]
    norm: ClassVar[int]
    # The OpenDP privacy measure its budget is stated in: a quantile is released under it.
    measure: ClassVar[str]

    @abstractmethod
    def share(self, epsilon: float, delta: float, parts: int) -> float:
        """The privacy parameter (ε or ρ) each of ``parts`` quantities may use."""

    @abstractmethod
    def _measurement(self, size: int, scale: float) -> Any:
        """The OpenDP measurement adding noise of ``scale`` to ``size`` values."""

    @abstractmethod
    def halfwidth(self, scale: float, alpha: float = 0.05) -> float:
        """``t`` such that one noisy value lies within ``t`` of the truth w.p. 1 - alpha."""

    @abstractmethod
    def variance(self, scale: float) -> float:
        """The variance of one noise draw of ``scale``."""

    def combined_halfwidth(self, scales: Sequence[float], alpha: float = 0.05) -> float:
        """``t`` such that a sum of independent draws of ``scales`` lies within ``t`` of
        0 w.p. at least 1 - alpha (a value read from several noisy ones, each weighted:
        pass each scale times its weight's absolute value)."""
        used = tuple(sorted(abs(s) for s in scales if s != 0.0))
        if len(used) <= 1:
            return self.halfwidth(used[0] if used else 0.0, alpha)
        return _combined(self.name, used, alpha)

    def _combined(self, scales: tuple[float, ...], alpha: float) -> float:
        # Bonferroni: each draw within its own half-width at alpha / n.
        return math.fsum(self.halfwidth(s, alpha / len(scales)) for s in scales)

    def scale(self, sensitivity: float, share: float, size: int) -> float:
        """The smallest scale (to 1e-12) whose OpenDP privacy map fits in ``share``."""
        return _scale(self.name, sensitivity, share, size)

    def _search(self, sensitivity: float, share: float, size: int) -> float:
        scale = sensitivity / self._share_unit(share)
        for _ in range(64):
            used = float(self._measurement(size, scale).map(sensitivity))
            if used <= share:
                return scale
            scale *= (used / share) * (1 + 1e-12)
        raise EntrepotError(
            f"{self.name}: no noise scale fits ε share {share:g}",
            hint="report this: the privacy map did not converge",
        )

    def _share_unit(self, share: float) -> float:
        return share

    def quantile_scale(self, rows: int, share: float, level: float) -> float:
        """The smallest scale whose quantile selection spends at most ``share`` when one
        unit adds or removes ``rows`` of weight, over all the groups its rows fall in."""
        return _quantile_scale(self.name, rows, share, level)

    def _quantile_search(self, rows: int, share: float, level: float) -> float:
        sensitivity = quantile_sensitivity(rows, level)
        scale = 2 * sensitivity / self._quantile_unit(share)
        for _ in range(64):
            measurement = _selection(self.name, scale)
            used = float(measurement.map(sensitivity))
            if self.measure == "max_divergence":
                # Pure ε adds up over groups: a unit whose weight is spread over groups
                # moves each one's scores by its part of the sensitivity and spends the
                # sum of their maps, which is the map of the whole only if the map is
                # linear: checked at a whole row and at a sliver of one.
                for part in (1.0, sensitivity * 2.0**-32):
                    used = max(used, sensitivity / part * float(measurement.map(part)))
            if used <= share:
                return scale
            scale *= (used / share) * (1 + 1e-12)
        raise EntrepotError(
            f"{self.name}: no quantile scale fits share {share:g}",
            hint="report this: the privacy map did not converge",
        )

    def _quantile_unit(self, share: float) -> float:
        return share

    def select_quantile(
        self, data: Weighted, candidates: Sequence[float], level: float, scale: float
    ) -> float:
        """The candidate OpenDP selects as the ``level`` quantile of ``data``."""
        scores = data.scores(np.asarray(candidates, dtype=np.float64), level)
        return float(candidates[_selection(self.name, scale)(scores)])

    def release(self, values: Sequence[float] | np.ndarray, scale: float) -> list[float]:
        """``values`` plus noise of ``scale``: one OpenDP measurement call for the vector.

        The measurement is built as the one whose privacy map :meth:`scale` checked
        (same size, same scale), so the whole vector spends at most the share it was
        priced at; OpenDP draws every coordinate's noise in that one call.
        """
        if not len(values):
            return []
        measurement = _built(self.name, len(values), scale)
        # A float64 array crosses into OpenDP as one buffer, not value by value.
        return list(measurement(np.asarray(values, dtype=np.float64)))


@functools.lru_cache(maxsize=4096)
def _scale(name: str, sensitivity: float, share: float, size: int) -> float:
    # A pure function of public numbers; caching it spares two OpenDP constructions
    # per quantity when the same shape of query comes back.
    return get(name)._search(sensitivity, share, size)


@functools.lru_cache(maxsize=4096)
def _combined(name: str, scales: tuple[float, ...], alpha: float) -> float:
    return get(name)._combined(scales, alpha)


@functools.lru_cache(maxsize=4096)
def _quantile_scale(name: str, rows: int, share: float, level: float) -> float:
    # The map depends on the sensitivity alone, not on the candidates or the data.
    return get(name)._quantile_search(rows, share, level)


@functools.lru_cache(maxsize=256)
def _selection(name: str, scale: float) -> Any:
    """OpenDP's selection of the least of a vector of scores, noised at ``scale``."""
    return dp.m.make_noisy_max(
        _domain(None),
        # a unit's rows move a candidate's score up or down: not monotonic
        dp.linf_distance(T=float, monotonic=False),
        getattr(dp, get(name).measure)(),
        scale,
        negate=True,
    )


@functools.lru_cache(maxsize=256)
def _built(name: str, size: int, scale: float) -> Any:
    # Building a measurement costs about as much as drawing 20 values (~200 µs,
    # measured), and a query's scales repeat whenever its shape does.
    return get(name)._measurement(size, scale)


def register(cls: type[Mechanism]) -> type[Mechanism]:
    _MECHANISMS[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(_MECHANISMS)


def get(name: str) -> Mechanism:
    """A mechanism by its registered name."""
    try:
        return _MECHANISMS[name]()
    except KeyError:
        raise InvalidInput(
            f"unknown mechanism {name!r}",
            hint=f"known mechanisms: {', '.join(names())}; set `mechanism:` in the policy",
        ) from None


@functools.lru_cache(maxsize=256)
def _domain(size: int | None) -> Any:
    return dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size)


# OpenDP 0.16 scores a level with a denominator of at most this (truncating beyond).
_LEVEL_DENOMINATOR = 10_000


def level_fraction(level: float) -> tuple[int, int]:
    """``level`` as the fraction ``num/den`` OpenDP 0.16 scores a quantile at: exact
    where its denominator is below 10,000 (0.5, 0.25), else ``level`` truncated to
    10⁻⁴ (``make_quantile_score_candidates``). Scoring at the same fraction keeps a
    selection on rows of weight 1 the one ``make_private_quantile`` would make."""
    num, den = Fraction(level).as_integer_ratio()
    if den < _LEVEL_DENOMINATOR:
        return num, den
    return int(level * _LEVEL_DENOMINATOR), _LEVEL_DENOMINATOR


def quantile_sensitivity(rows: float, level: float) -> float:
    """How far one unit adding or removing ``rows`` of weight moves any quantile score,
    and the sum of how far it moves each group's: it adds ``a`` below a candidate and
    ``b`` above it (``a + b`` at most its weight in the group), which moves
    ``|(1-q)·a - q·b|`` by at most ``max(q, 1-q)·(a + b)``."""
    num, den = level_fraction(level)
    return rows * max(num, den - num) / den


@dataclass(frozen=True)
class Weighted:
    """A group's values in increasing order and the running sum of their weights
    (``cumulative[i]`` the weight of ``values[:i]``): the data a quantile is selected
    on, sorted once for every candidate grid it is scored on."""

    values: np.ndarray
    cumulative: np.ndarray

    @classmethod
    def of(cls, values: Any, weights: Any = None) -> Weighted:
        """``values`` (floats, no NaN) with ``weights`` (1 each when None)."""
        values = np.asarray(values, dtype=np.float64)
        # tied values' order is immaterial: scores read the weight below and above a
        # candidate, never within a run of equal values
        order = np.argsort(values)
        weights = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(weights[order])))
        return cls(values[order], cumulative)

    def scores(self, candidates: np.ndarray, level: float) -> np.ndarray:
        """Each candidate ``c``'s quantile score ``|(1-q)·W(x < c) - q·W(x > c)|``, ``W``
        the weight of the values it holds: 0 at the exact quantile, growing away from it.
        On weights of 1, OpenDP's score over its denominator (:func:`level_fraction`)."""
        below = self.cumulative[np.searchsorted(self.values, candidates, side="left")]
        above = (
            self.cumulative[-1]
            - self.cumulative[np.searchsorted(self.values, candidates, side="right")]
        )
        num, den = level_fraction(level)
        return np.abs((den - num) * below - num * above) / den


@register
class Laplace(Mechanism):
    name = "laplace"
    norm = 1
    measure = "max_divergence"

    def share(self, epsilon: float, delta: float, parts: int) -> float:
        return epsilon / parts

    def _measurement(self, size: int, scale: float) -> Any:
        return dp.m.make_laplace(_domain(size), dp.l1_distance(T=float), scale, k=_K)

    def halfwidth(self, scale: float, alpha: float = 0.05) -> float:
        return scale * math.log(1 / alpha)

    def variance(self, scale: float) -> float:
        return 2 * scale * scale

    def _combined(self, scales: tuple[float, ...], alpha: float) -> float:
        if len(scales) != 2:
            return super()._combined(scales, alpha)
        b, a = scales  # b <= a
        # The sum of two Laplace draws of scales a and b: its exact two-sided tail is
        # (a² e^{-t/a} - b² e^{-t/b}) / (a² - b²), and e^{-t/a} (1 + t/(2a)) when a = b.
        # Close scales are both taken at a: by Anderson's theorem a wider symmetric
        # unimodal draw only widens the sum, so the half-width stays conservative.
        if b > a * (1 - 1e-6):
            b = a

        def tail(t: float) -> float:
            if b == a:
                return math.exp(-t / a) * (1 + t / (2 * a))
            return (a * a * math.exp(-t / a) - b * b * math.exp(-t / b)) / (a * a - b * b)

        # |X + Y| is at least as spread as |X| alone, and within Bonferroni's sum.
        low, high = self.halfwidth(a, alpha), super()._combined(scales, alpha)
        for _ in range(_BISECTIONS * 2):
            middle = (low + high) / 2
            if tail(middle) > alpha:
                low = middle
            else:
                high = middle
        return high


def _profile_delta(rho: float, epsilon: float) -> float:
    """The δ at ``epsilon`` of OpenDP's (ε, δ) profile of a ρ-zCDP guarantee."""
    # A Gaussian of scale 1/√(2ρ) at sensitivity 1 is ρ-zCDP (OpenDP's map rounds ρ
    # up, never down); its cast to approximate DP carries OpenDP's conversion.
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), 1 / math.sqrt(2 * rho)
    )
    return float(dp.c.make_zCDP_to_approxDP(gaussian).map(1.0).delta(epsilon))


# Bisection steps: the bracket starts within a factor 2 of the answer, and 2^-30 of
# it is far below any difference a noise scale could show.
_BISECTIONS = 30


@register
class Gaussian(Mechanism):
    name = "gaussian"
    norm = 2
    measure = "zero_concentrated_divergence"

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def rho(epsilon: float, delta: float) -> float:
        """The largest ρ (to 2^-30 relative) whose zCDP guarantee OpenDP converts to
        (ε, δ)-DP; never below Bun & Steinke's closed form, which OpenDP's bound beats."""
        log_term = math.log(1 / delta)
        low = (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2
        if _profile_delta(low, epsilon) > delta:
            raise EntrepotError(
                f"gaussian: OpenDP converts ρ {low:g} to more than ε {epsilon:g} at δ {delta:g}",
                hint="report this: Bun & Steinke's ρ should always fit",
            )
        high = 2 * low
        while _profile_delta(high, epsilon) <= delta:
            low, high = high, 2 * high
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            if _profile_delta(middle, epsilon) <= delta:
                low = middle
            else:
                high = middle
        return low

    def share(self, epsilon: float, delta: float, parts: int) -> float:
        return self.rho(epsilon, delta) / parts

    def _share_unit(self, share: float) -> float:
        # σ = Δ₂ / √(2ρ): the map of a Gaussian of scale σ at Δ₂ is Δ₂² / (2σ²).
        return math.sqrt(2 * share)

    def _quantile_unit(self, share: float) -> float:
        # The exponential mechanism at ε is ε²/8-zCDP (bounded range): ε = √(8ρ).
        return math.sqrt(8 * share)

    def _measurement(self, size: int, scale: float) -> Any:
        return dp.m.make_gaussian(_domain(size), dp.l2_distance(T=float), scale, k=_K)

    def halfwidth(self, scale: float, alpha: float = 0.05) -> float:
        return scale * NormalDist().inv_cdf(1 - alpha / 2)

    def variance(self, scale: float) -> float:
        return scale * scale

    def _combined(self, scales: tuple[float, ...], alpha: float) -> float:
        # A sum of independent Gaussians is Gaussian, of variance the sum of theirs.
        return self.halfwidth(math.sqrt(math.fsum(s * s for s in scales)), alpha)
