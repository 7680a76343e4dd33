"""The Gaussian mechanism's ρ is the largest OpenDP's zCDP → (ε, δ) conversion allows."""

from __future__ import annotations

import math

import opendp.prelude as dp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES

from entrepot.privacy import parse_policy, plan
from entrepot.privacy.mechanisms import Gaussian, _profile_delta
from entrepot.standards.schema import Standard

SQL = (
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)


def _bun_steinke(epsilon: float, delta: float) -> float:
    log_term = math.log(1 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


@settings(max_examples=25, deadline=None)
@given(
    epsilon=st.floats(min_value=0.01, max_value=5.0),
    delta=st.floats(min_value=1e-14, max_value=1e-5),
)
def test_rho_is_sound_tight_and_above_the_closed_form(epsilon: float, delta: float) -> None:
    rho = Gaussian.rho(epsilon, delta)
    assert _profile_delta(rho, epsilon) <= delta
    assert _profile_delta(rho * (1 + 1e-8), epsilon) > delta * (1 - 1e-6)
    assert rho > _bun_steinke(epsilon, delta)


@pytest.mark.parametrize(
    ("epsilon", "delta", "rho", "sigma"),
    [
        # Measured with benchmarks/bench_delta.py; Bun & Steinke gave σ 67.94, 12.22, 5.35.
        (0.1, 1e-10, 0.00015361, 57.05),
        (0.5, 1e-8, 0.0045782, 10.45),
        (1.0, 1e-6, 0.024356, 4.531),
    ],
)
def test_the_measured_rho_and_sigma(epsilon: float, delta: float, rho: float, sigma: float) -> None:
    gaussian = Gaussian()
    assert Gaussian.rho(epsilon, delta) == pytest.approx(rho, rel=1e-4)
    scale = gaussian.scale(1.0, gaussian.share(epsilon, delta, 1), 1)
    assert scale == pytest.approx(sigma, rel=1e-3)
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=float, nan=False), size=1),
        dp.l2_distance(T=float),
        scale,
        k=-30,
    )
    spent, _ = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(measurement), delta).map(1.0)
    assert spent <= epsilon


def test_a_plans_fingerprint_follows_its_noise_scales(
    standard: Standard, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = parse_policy({"mechanism": "gaussian", "delta": 1e-9}, standard)
    tight = plan(SQL, standard=standard, policy=policy, epsilon=0.5, codes=CODES)
    monkeypatch.setattr(Gaussian, "rho", staticmethod(_bun_steinke))
    loose = plan(SQL, standard=standard, policy=policy, epsilon=0.5, codes=CODES)
    assert [loose.scales[q] > s for q, s in tight.scales.items()] == [True]
    assert loose.fingerprint != tight.fingerprint
