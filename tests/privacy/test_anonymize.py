"""Anonymization: every release meets the model it claims, checked on its output alone,
and the search finds the least loss (against brute force over the whole lattice)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.errors import InvalidInput, PolicyViolation
from entrepot.privacy.anonymize import Criteria, anonymize
from entrepot.privacy.anonymize.search import Search, Table
from entrepot.standards import codelist, get

STANDARD = get("health.visit")
QUASI = ["district", "age_band", "sex", "visit_date"]
DISTRICTS = list(codelist("region.district").codes)[:12]
AGES = list(codelist("age_band").codes)
DIAGNOSES = list(codelist("diagnosis_group").codes)[:6]


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(20, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    units = draw(st.integers(max(1, n // 4), n))
    rng = np.random.default_rng(seed)
    skew = draw(st.floats(0.2, 3.0))
    weights = rng.dirichlet([skew] * len(DISTRICTS))
    days = pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
    return pd.DataFrame(
        {
            "visit_id": [f"V{i}" for i in range(n)],
            "patient_id": [f"P{rng.integers(units)}" for _ in range(n)],
            "visit_date": days.date,
            "district": rng.choice(DISTRICTS, n, p=weights),
            "sex": rng.choice([1, 2], n),
            "age_band": rng.choice(AGES, n),
            "diagnosis_group": rng.choice(DIAGNOSES, n),
            "cost": rng.uniform(0, 9000, n),
        }
    )


def _check(frame: pd.DataFrame, criteria: Criteria) -> None:
    try:
        done = anonymize(
            frame,
            STANDARD,
            quasi=QUASI,
            criteria=criteria,
            sensitive="diagnosis_group" if criteria.l > 1 or criteria.t < 1 else None,
            kept_sensitive=("diagnosis_group",),
            keep=("cost",),
        )
    except PolicyViolation as refused:
        rule = refused.details["rule"]
        done = None
    if done is None:
        assert rule == "suppression_limit"
        return
    out = done.table.to_pandas()
    report = done.report
    # The row accounting holds, and suppression stays within the limit.
    assert report["rows_released"] == len(out)
    assert report["rows_released"] + report["rows_suppressed"] == len(frame)
    assert report["rows_suppressed"] <= criteria.max_suppression * len(frame) + 1e-9
    # No identifier and no column the release does not name leaves.
    assert set(out.columns) == {*QUASI, "diagnosis_group", "cost"}
    assert out["cost"].between(0, 5000).all()
    # Checked on the output alone: every class meets the model. The released rows carry
    # no unit, so this checks rows; the input's units per class are checked below.
    classes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for row in out.itertuples(index=False):
        classes[tuple(str(getattr(row, q)) for q in QUASI)].append(row.diagnosis_group)
    whole = Counter(out["diagnosis_group"]) if len(out) else Counter()
    for values in classes.values():
        assert len(values) >= criteria.k
        if criteria.l > 1:
            assert len(set(values)) >= criteria.l
        if criteria.t < 1:
            here = Counter(values)
            distance = 0.5 * sum(
                abs(here[v] / len(values) - whole[v] / len(out)) for v in set(here) | set(whole)
            )
            # Measured against the input's distribution; the output's differs only by
            # the suppressed rows, so allow for them.
            slack = report["rows_suppressed"] / max(len(frame), 1)
            assert distance <= criteria.t + slack + 1e-9
    assert report["classes"]["smallest_units"] >= criteria.k or not len(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=tables(),
    k=st.integers(2, 8),
    diversity=st.integers(1, 3),
    limit=st.sampled_from([0.0, 0.02, 0.1, 0.3]),
)
def test_every_release_meets_k_and_l_within_the_suppression_limit(
    frame: pd.DataFrame,
    k: int,
    diversity: int,
    limit: float,
) -> None:
    _check(frame, Criteria(k=k, l=diversity, max_suppression=limit))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=tables(), t=st.sampled_from([0.3, 0.5, 0.8]))
def test_every_release_meets_t_closeness(frame: pd.DataFrame, t: float) -> None:
    _check(frame, Criteria(k=2, t=t, max_suppression=0.1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=tables(),
    k=st.integers(2, 10),
    diversity=st.integers(1, 2),
    limit=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_the_search_finds_the_least_loss_of_the_whole_lattice(
    frame: pd.DataFrame, k: int, diversity: int, limit: float
) -> None:
    from entrepot.privacy.anonymize.hierarchy import hierarchy_for

    levels, codes = [], []
    for column in QUASI:
        column_codes, uniques = pd.factorize(frame[column])
        values = list(uniques)
        levels.append(hierarchy_for(STANDARD.field(column), values).levels(values))
        codes.append(column_codes.astype(np.int32))
    sensitive, values = pd.factorize(frame["diagnosis_group"])
    table, _ = Table.build(
        tuple(levels), tuple(codes), None, sensitive.astype(np.int32), len(values)
    )
    criteria = Criteria(k=k, l=diversity, max_suppression=limit)
    best, _ = Search(table, criteria).run()
    brute = Search(table, criteria)
    passing = [
        brute.evaluate(node) for node in itertools.product(*(range(lv.height) for lv in levels))
    ]
    losses = [e.loss for e in passing if e.passes]
    if best is None:
        assert losses == []
    else:
        assert best.loss == pytest.approx(min(losses))


def test_a_refusal_names_the_suppression_limit() -> None:
    frame = pd.DataFrame(
        {
            "visit_id": ["a", "b"],
            "patient_id": ["P1", "P2"],
            "visit_date": pd.to_datetime(["2025-01-01", "2025-06-01"]).date,
            "district": DISTRICTS[:2],
            "sex": [1, 2],
            "age_band": AGES[:2],
            "diagnosis_group": DIAGNOSES[:2],
            "cost": [1.0, 2.0],
        }
    )
    with pytest.raises(PolicyViolation) as refused:
        anonymize(frame, STANDARD, quasi=QUASI, criteria=Criteria(k=5))
    assert refused.value.details["rule"] == "suppression_limit"


def test_a_unit_with_many_rows_does_not_make_a_class_alone() -> None:
    # Ten visits of one patient share every quasi-identifier: ten rows, one unit.
    frame = pd.DataFrame(
        {
            "visit_id": [f"V{i}" for i in range(10)],
            "patient_id": ["P1"] * 10,
            "visit_date": pd.to_datetime(["2025-01-01"] * 10).date,
            "district": [DISTRICTS[0]] * 10,
            "sex": [1] * 10,
            "age_band": [AGES[0]] * 10,
            "diagnosis_group": [DIAGNOSES[0]] * 10,
            "cost": [1.0] * 10,
        }
    )
    with pytest.raises(PolicyViolation):
        anonymize(frame, STANDARD, quasi=QUASI, criteria=Criteria(k=5))


def _pseudonymized(frame: pd.DataFrame, k: int, limit: float) -> pd.DataFrame | None:
    try:
        done = anonymize(
            frame,
            STANDARD,
            quasi=QUASI,
            criteria=Criteria(k=k, max_suppression=limit),
            kept_sensitive=("diagnosis_group",),
            keep=("cost",),
            pseudonyms=("patient_id", "visit_id"),
        )
    except PolicyViolation as refused:
        rule = refused.details["rule"]
        done = None
    if done is None:
        assert rule == "suppression_limit"
        return None
    out = done.table.to_pandas()
    report = done.report
    assert report["rows_released"] + report["rows_suppressed"] == len(frame) == report["rows_in"]
    assert report["rows_released"] == len(out)
    assert report["rows_suppressed"] <= limit * len(frame) + 1e-9
    assert report["pseudonyms"]["links_units"]
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=tables(), k=st.integers(2, 6), limit=st.sampled_from([0.05, 0.2, 0.5]))
def test_pseudonyms_hold_within_a_release_differ_across_releases_and_keep_k_per_unit(
    frame: pd.DataFrame, k: int, limit: float
) -> None:
    # A distinct cost per row (within its public bounds) tells which input row each is.
    frame = frame.assign(cost=np.arange(len(frame)) * 0.5)
    first = _pseudonymized(frame, k, limit)
    second = _pseudonymized(frame, k, limit)
    if first is None or second is None:
        assert first is None
        assert second is None
        return
    assert set(first.columns) == {*QUASI, "diagnosis_group", "cost", "patient_id", "visit_id"}
    source = frame.set_index("cost")
    for out in (first, second):
        # Within a release: one person, one pseudonym; two people, two pseudonyms.
        pairs = pd.DataFrame(
            {"person": source.loc[out["cost"], "patient_id"].to_numpy(), "alias": out["patient_id"]}
        )
        assert (pairs.groupby("person")["alias"].nunique() == 1).all()
        assert (pairs.groupby("alias")["person"].nunique() == 1).all()
        assert out["visit_id"].is_unique
        assert not out["patient_id"].isin(frame["patient_id"]).any()
    # Across releases of the same data: no pseudonym comes back.
    assert set(first["patient_id"]).isdisjoint(second["patient_id"])
    assert set(first["visit_id"]).isdisjoint(second["visit_id"])
    # Linked by the pseudonym, a unit's set of released classes is shared by k units.
    signature = first.groupby("patient_id").apply(
        lambda rows: frozenset(tuple(str(v) for v in r) for r in rows[QUASI].to_numpy()),
        include_groups=False,
    )
    assert (signature.map(signature.value_counts()) >= k).all()


def test_a_pseudonym_cannot_also_be_a_quasi_identifier() -> None:
    frame = pd.DataFrame({"patient_id": ["P1"], "district": DISTRICTS[:1]})
    with pytest.raises(InvalidInput):
        anonymize(
            frame,
            STANDARD,
            quasi=["district", "patient_id"],
            criteria=Criteria(k=1),
            pseudonyms=("patient_id",),
        )
