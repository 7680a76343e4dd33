"""One OpenDP call per vector: each coordinate gets its own noise at the priced scale."""

from __future__ import annotations

import math

import numpy as np
import opendp.prelude as dp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from entrepot.privacy import mechanisms

SIZE = 20_000


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["laplace", "gaussian"]),
    sensitivity=st.floats(min_value=0.5, max_value=1e5),
    epsilon=st.floats(min_value=0.01, max_value=5.0),
    parts=st.integers(min_value=1, max_value=6),
    size=st.integers(min_value=1, max_value=5000),
)
def test_the_vector_measurement_of_a_scale_spends_no_more_than_its_share(
    name: str, sensitivity: float, epsilon: float, parts: int, size: int
) -> None:
    mechanism = mechanisms.get(name)
    share = mechanism.share(epsilon, 1e-9, parts)
    scale = mechanism.scale(sensitivity, share, size)
    # The measurement over the whole vector, as OpenDP builds it: its map at the
    # vector's sensitivity (L1 for Laplace, L2 for Gaussian) is what a release spends.
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=size)
    if name == "laplace":
        built = dp.m.make_laplace(domain, dp.l1_distance(T=float), scale, k=-30)
    else:
        built = dp.m.make_gaussian(domain, dp.l2_distance(T=float), scale, k=-30)
    assert built.map(sensitivity) <= share
    # and no more noise than needed: the 2^-30 lattice adds at most 2^-30 per value
    assert scale == pytest.approx(sensitivity / mechanism._share_unit(share), rel=1e-3)


@pytest.mark.parametrize("name", ["laplace", "gaussian"])
def test_one_release_draws_independent_noise_of_the_claimed_scale_per_coordinate(
    name: str,
) -> None:
    mechanism = mechanisms.get(name)
    scale = 3.0
    truth = np.arange(SIZE, dtype=np.float64) * 10
    noise = np.asarray(mechanism.release(truth.tolist(), scale)) - truth
    assert len(noise) == SIZE
    family = stats.laplace if name == "laplace" else stats.norm
    # Noise of the claimed shape gives a p-value under 10⁻⁶ one time in a million.
    assert stats.kstest(noise, family(scale=scale).cdf).pvalue > 1e-6
    # Adjacent coordinates are uncorrelated (a shared draw would give r = 1);
    # |r| < 0.05 is seven standard errors (1/sqrt(20,000) = 0.007) away.
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.05
    # 20,000 draws inside their 95% half-width: outside [94%, 96%] six standard
    # errors (0.15%) away.
    halfwidth = mechanism.halfwidth(scale)
    covered = float(np.mean(np.abs(noise) <= halfwidth))
    assert 0.94 <= covered <= 0.96


def test_a_release_accepts_any_sequence_and_returns_python_floats() -> None:
    laplace = mechanisms.get("laplace")
    for values in ([1.0, 2.0], (1.0, 2)):
        noisy = laplace.release(values, 1.0)
        assert [type(v) for v in noisy] == [float, float]
        assert all(math.isfinite(v) for v in noisy)
    assert laplace.release((), 1.0) == []
