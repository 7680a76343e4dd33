"""DP synthesis: rows in the public domains, a model whose tables agree with each other,
and rows that keep the model's 1-way and tree 2-way marginals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.privacy._marginals import conditional_draw, rounded, simplex
from entrepot.privacy.synth import columns_of, fit, synthesize
from entrepot.standards import codelist, get

STANDARD = get("health.visit")
NAMES = ("visit_date", "district", "sex", "age_band", "diagnosis_group")
COLUMNS, _ = columns_of(STANDARD, NAMES)
DISTRICTS = list(codelist("region.district").codes)
AGES = list(codelist("age_band").codes)
DIAGNOSES = list(codelist("diagnosis_group").codes)


def visits(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(0, len(AGES), n)
    return pd.DataFrame(
        {
            "visit_date": pd.to_datetime("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 150, n), unit="D"),
            "district": rng.choice(DISTRICTS[:15], n, p=rng.dirichlet([0.5] * 15)),
            "sex": rng.choice([1, 2], n),
            "age_band": np.asarray(AGES)[age],
            # Diagnosis follows age band, so one 2-way marginal carries the signal.
            "diagnosis_group": np.asarray(DIAGNOSES)[(age * 2 + rng.integers(0, 2, n)) % 8],
        }
    )


def codes_of(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([c.encode(frame[c.name]) for c in COLUMNS])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    epsilon=st.floats(0.05, 20),
    rows=st.integers(1, 500),
)
def test_rows_fall_in_the_public_domains(n: int, seed: int, epsilon: float, rows: int) -> None:
    table, report = synthesize(visits(n, seed), COLUMNS, epsilon=epsilon, rows=rows, seed=seed)
    assert table.num_rows == rows
    for column in COLUMNS:
        assert set(table.column(column.name).to_pylist()) <= set(column.categories)
    assert len(report["tree"]) == len(COLUMNS) - 1


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32 - 1), epsilon=st.floats(0.05, 20))
def test_every_table_of_the_model_agrees_with_the_column_counts(
    n: int, seed: int, epsilon: float
) -> None:
    model = fit(codes_of(visits(n, seed)), COLUMNS, epsilon, 1.0)
    total = model.one_way[0].sum()
    for counts in model.one_way:
        assert (counts >= 0).all()
        assert counts.sum() == pytest.approx(total)
    # Raking meets the margins to 10⁻⁹ of the total, or as near as its rounds come on
    # tables the noise left sparse (within 2·10⁻⁶ over 120 random small ones).
    near = 1e-4 * total
    for (parent, child), joint in model.two_way.items():
        assert (joint >= 0).all()
        assert joint.sum(axis=1) == pytest.approx(model.one_way[parent], abs=near)
        assert joint.sum(axis=0) == pytest.approx(model.one_way[child], abs=near)


def _tvd(real: np.ndarray, synthetic: np.ndarray, size: int) -> float:
    p = np.bincount(real, minlength=size) / len(real)
    q = np.bincount(synthetic, minlength=size) / len(synthetic)
    return 0.5 * float(np.abs(p - q).sum())


def test_with_little_noise_the_rows_keep_every_marginal_of_the_model() -> None:
    frame = visits(20_000, 5)
    table, report = synthesize(frame, COLUMNS, epsilon=1e5, rows=20_000, seed=1)
    real, synthetic = codes_of(frame), codes_of(table.to_pandas())
    for i, column in enumerate(COLUMNS):
        assert _tvd(real[:, i], synthetic[:, i], len(column.categories)) < 0.005
    names = [c.name for c in COLUMNS]
    for a, b in report["tree"]:
        i, j = names.index(a), names.index(b)
        size = len(COLUMNS[j].categories)
        cells = len(COLUMNS[i].categories) * size
        pairs = [codes[:, i] * size + codes[:, j] for codes in (real, synthetic)]
        assert _tvd(*pairs, cells) < 0.02
    assert report["fidelity"]["one_way_mean"] < 0.005


def test_noise_in_empty_categories_is_taken_off_not_clipped() -> None:
    noisy = np.array([500.0, 480.0, *np.random.default_rng(0).laplace(0, 10, 200)])
    projected = simplex(noisy, 980.0)
    assert projected.sum() == pytest.approx(980.0)
    assert projected[2:].sum() < 0.5 * np.clip(noisy[2:], 0, None).sum()


def test_two_children_of_one_parent_are_drawn_independently() -> None:
    rng = np.random.default_rng(3)
    parents = rounded(np.array([0.5, 0.5]), 20_000, rng)
    halves = np.full((2, 2), 0.5)
    first = conditional_draw(halves, parents, rng)
    second = conditional_draw(halves, parents, rng)
    for parent in (0, 1):
        mine = parents == parent
        # Stratified within the parent: each child's split is exact.
        assert abs(first[mine].mean() - 0.5) < 1e-3
        assert abs(np.corrcoef(first[mine], second[mine])[0, 1]) < 0.05
