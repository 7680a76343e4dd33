"""Mechanisms: OpenDP noise whose empirical shape matches the claimed scale."""

from __future__ import annotations

import math
from pathlib import Path

import opendp.prelude as dp
import pytest
from privacy_fixtures import CODES, DATASET
from scipy import stats

from entrepot.engine import DuckDBEngine, EngineOptions
from entrepot.errors import InvalidInput
from entrepot.privacy import Gaussian, Laplace, mechanisms, parse_policy, plan
from entrepot.standards.schema import Standard


def test_mechanisms_are_registered_by_name_and_unknown_names_list_the_known() -> None:
    assert mechanisms.names() == ["gaussian", "laplace"]
    assert isinstance(mechanisms.get("laplace"), Laplace)
    with pytest.raises(InvalidInput) as unknown:
        mechanisms.get("exponential")
    assert "gaussian, laplace" in unknown.value.hint


@pytest.mark.parametrize(("sensitivity", "share"), [(1.0, 0.1), (3.0, 0.3), (15000.0, 1 / 3)])
def test_the_laplace_scale_is_the_smallest_opendp_accepts(sensitivity: float, share: float) -> None:
    laplace = Laplace()
    scale = laplace.scale(sensitivity, share, size=10)
    assert scale == pytest.approx(sensitivity / share, rel=1e-6)
    assert laplace.halfwidth(scale) == pytest.approx(scale * math.log(20))


def test_the_gaussian_rho_converts_back_to_the_requested_epsilon_and_delta() -> None:
    epsilon, delta = 1.0, 1e-9
    rho = Gaussian.rho(epsilon, delta)
    # OpenDP's conversion allows more ρ than Bun & Steinke's closed form (0.01178).
    assert rho == pytest.approx(0.0149731, rel=1e-5)
    log_term = math.log(1 / delta)
    assert rho > (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2
    gaussian = Gaussian()
    scale = gaussian.scale(2.0, gaussian.share(epsilon, delta, 1), size=4)
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=float, nan=False), size=4), dp.l2_distance(T=float), scale
    )
    assert scale == pytest.approx(11.5574, rel=1e-5)
    # OpenDP's own conversion confirms the spend is within (ε, δ), and all but spent
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(measurement), delta)
    spent, spent_delta = approx.map(2.0)
    assert epsilon * (1 - 1e-6) < spent <= epsilon
    assert spent_delta == delta


def test_release_adds_noise_and_keeps_the_length() -> None:
    laplace = Laplace()
    noisy = laplace.release([10.0, 20.0, 30.0], 1.0)
    assert len(noisy) == 3
    assert noisy != [10.0, 20.0, 30.0]
    assert laplace.release([], 1.0) == []


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_count_noise_matches_the_claimed_scale_and_intervals_cover_95_percent(
    mechanism: str, standard: Standard, visits_file: Path
) -> None:
    policy = parse_policy({"mechanism": mechanism, "delta": 1e-9}, standard)
    sql = f"SELECT COUNT(DISTINCT patient_id) AS patients FROM {DATASET}"
    p = plan(sql, standard=standard, policy=policy, epsilon=0.5, codes=CODES)
    runs = 2000
    options = EngineOptions((visits_file.parent,), threads=1)
    with DuckDBEngine(options) as engine, engine.session() as session:
        session.register_parquet("v", [visits_file])
        truth = session.execute(
            f"SELECT COUNT(DISTINCT patient_id) AS n FROM read_parquet('{visits_file}')"
        )
        true_count = float(truth.column("n")[0].as_py())
        exact = session.execute(p.sql("v"))
    # the exact aggregate is computed once; each release draws fresh noise on it
    answers = [p.release(exact) for _ in range(runs)]
    scale = answers[0].scales["patients"]
    assert scale == pytest.approx(2.0 if mechanism == "laplace" else scale)
    estimates = [a.rows[0].values[0] for a in answers]
    noise = [e.value - true_count for e in estimates]
    family = stats.laplace if mechanism == "laplace" else stats.norm
    reference = family(scale=scale)
    # Noise of the claimed shape gives a p-value under 10⁻⁶ one time in a million; a
    # scale twice too large or small is far below it at 2,000 draws.
    assert stats.kstest(noise, reference.cdf).pvalue > 1e-6
    # 95% intervals: 2,000 answers cover outside [92%, 98%] with probability 5·10⁻⁹;
    # noise a quarter larger than claimed covers 91% (Laplace) or 88% (Gaussian).
    covered = sum(e.lo <= true_count <= e.hi for e in estimates) / runs
    assert 0.92 <= covered <= 0.98


def test_every_estimate_lies_inside_its_interval_even_for_empty_groups(
    standard: Standard, visits_file: Path
) -> None:
    policy = parse_policy({}, standard)
    sql = (
        f"SELECT COUNT(*) AS visits, SUM(cost) AS cost, AVG(cost) AS avg_cost FROM {DATASET} "
        "WHERE visit_date < DATE '2001-01-01'"
    )
    p = plan(sql, standard=standard, policy=policy, epsilon=0.05, codes=CODES)
    options = EngineOptions((visits_file.parent,), threads=1)
    with DuckDBEngine(options) as engine, engine.session() as session:
        session.register_parquet("v", [visits_file])
        exact = session.execute(p.sql("v"))
    for _ in range(300):
        for row in p.release(exact).rows:
            for estimate in row.values:
                value = estimate.lo if estimate.value is None else estimate.value
                assert estimate.lo <= value <= estimate.hi
