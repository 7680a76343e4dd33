"""Composition: whatever a query asks, its released quantities spend exactly its budget,
and a SUM read from two of them is covered by its stated interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES, DATASET, visit_standard
from scipy.stats import binom

from entrepot.privacy import mechanisms, parse_policy, plan
from entrepot.privacy.mechanisms import _built
from entrepot.privacy.sql.rewrite import OVER

STANDARD = visit_standard()
AGGREGATES = (
    "COUNT(*)",
    "COUNT(duration_hours)",
    "COUNT(DISTINCT patient_id)",
    "SUM(cost)",
    "AVG(cost)",
    "SUM(duration_hours)",
    "AVG(duration_hours)",
)


@settings(max_examples=60, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=5, unique=True),
    grouped=st.booleans(),
    mechanism=st.sampled_from(["laplace", "gaussian"]),
    epsilon=st.sampled_from([0.1, 0.5, 1.0]),
    removed=st.sampled_from([0.0, 0.1]),
    threshold=st.sampled_from([0.0, 20.0]),
)
def test_the_released_quantities_spend_the_query_budget_and_no_more(
    chosen: list[str],
    grouped: bool,
    mechanism: str,
    epsilon: float,
    removed: float,
    threshold: float,
) -> None:
    select = ", ".join(f"{a} AS a{i}" for i, a in enumerate(chosen))
    sql = f"SELECT {'district, ' if grouped else ''}{select} FROM {DATASET}"
    sql += " GROUP BY district" if grouped else ""
    policy = parse_policy(
        {
            "mechanism": mechanism,
            "delta": 1e-9,
            "threshold": threshold,
            "contributions": {"removed_epsilon": removed},
        },
        STANDARD,
    )
    p = plan(sql, standard=STANDARD, policy=policy, epsilon=epsilon, codes=CODES)
    noise = mechanisms.get(mechanism)
    budget = noise.share(epsilon, 1e-9, 1)
    size = len(p.groups)
    # Every released vector at the scale it is drawn at, mapped by OpenDP at its
    # sensitivity; the removed totals likewise (one value each). Sequential composition.
    spent = [
        float(_built(mechanism, size, p.scales[q.name]).map(p.rewrite.sensitivity(q, noise.norm)))
        for q in p.rewrite.quantities
    ]
    spent += [
        float(_built(mechanism, 1, scale).map(q.removed))
        for q in p.rewrite.quantities
        if (scale := p.removal_scales.get(q.name)) is not None
    ]
    # and the count of units above the removed totals' cap, where it is tested
    if p.over_scale:
        spent.append(float(_built(mechanism, 1, p.over_scale).map(OVER.l1)))
    assert math.fsum(spent) <= budget * (1 + 1e-9)
    assert math.fsum(spent) >= budget * (1 - 1e-6)
    # A SUM whose count is released anyway gets no noise of its own.
    released = {(q.kind, q.column) for q in p.rewrite.quantities}
    for d in p.rewrite.derived:
        assert ("sum", d.column) not in released
        assert {d.centred, d.count} <= {q.name for q in p.rewrite.quantities}


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize(("first", "second"), [(1.0, 1.0), (3.0, 1.0), (1.0, 40.0)])
def test_a_sum_of_two_noises_lies_within_its_halfwidth_at_its_stated_rate(
    mechanism: str, first: float, second: float
) -> None:
    noise = mechanisms.get(mechanism)
    draws = 20_000
    a = np.asarray(noise.release([0.0] * draws, first))
    b = np.asarray(noise.release([0.0] * draws, second))
    for alpha in (0.05, 0.2):
        t = noise.combined_halfwidth([first, second], alpha)
        outside = int(np.sum(np.abs(a + b) > t))
        # exact, not merely conservative: the sum leaves it at the rate alpha itself
        assert binom.cdf(outside, draws, alpha) > 1e-9
        assert binom.sf(outside - 1, draws, alpha) > 1e-9
    assert noise.combined_halfwidth([first], 0.05) == noise.halfwidth(first, 0.05)
