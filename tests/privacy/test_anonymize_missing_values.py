"""Anonymization of rows read as the vault reads them (Parquet through Arrow to pandas,
where a missing text is NaN): a missing value anywhere is released as missing or
generalized, and never makes a release fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.errors import PolicyViolation
from entrepot.privacy.anonymize import Criteria, anonymize
from entrepot.standards import codelist, get

STANDARD = get("health.visit")
QUASI = ["district", "age_band", "sex", "visit_date"]
DISTRICTS = list(codelist("region.district").codes)[:6]
AGES = list(codelist("age_band").codes)[:6]
DIAGNOSES = list(codelist("diagnosis_group").codes)[:4]


@st.composite
def read_back(draw: st.DrawFn) -> pd.DataFrame:
    """Visits with values missing at random, as the vault's engine hands them over."""
    n = draw(st.integers(10, 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    share = draw(st.sampled_from([0.0, 0.01, 0.2, 1.0]))

    def holes(values: np.ndarray) -> list[object]:
        return [None if rng.random() < share else v for v in values.tolist()]

    days = pd.to_datetime("2025-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    frame = pd.DataFrame(
        {
            "visit_id": [f"V{i}" for i in range(n)],
            "patient_id": [f"P{rng.integers(max(n // 2, 1))}" for _ in range(n)],
            "visit_date": holes(np.asarray(days.date)),
            "district": holes(rng.choice(DISTRICTS, n)),
            "sex": holes(rng.choice([1, 2], n)),
            "age_band": holes(rng.choice(AGES, n)),
            "diagnosis_group": holes(rng.choice(DIAGNOSES, n)),
            "cost": holes(rng.uniform(0, 9000, n)),
        }
    )
    return pa.Table.from_pandas(frame, preserve_index=False).to_pandas()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=read_back(), k=st.integers(2, 5), diversity=st.integers(1, 2))
def test_missing_values_are_released_as_missing_and_never_fail_a_release(
    frame: pd.DataFrame, k: int, diversity: int
) -> None:
    try:
        done = anonymize(
            frame,
            STANDARD,
            quasi=QUASI,
            criteria=Criteria(k=k, l=diversity, max_suppression=0.2),
            sensitive="diagnosis_group" if diversity > 1 else None,
            kept_sensitive=("diagnosis_group",),
            keep=("cost",),
            pseudonyms=("patient_id",),
        )
    except PolicyViolation as refused:
        rule = refused.details["rule"]
        done = None
    if done is None:
        assert rule == "suppression_limit"
        return
    released = done.table
    assert released.num_rows == done.report["rows_released"]
    diagnoses = released.column("diagnosis_group").to_pylist()
    assert set(diagnoses) <= {*DIAGNOSES, None}
    missing = int(frame["diagnosis_group"].isna().sum())
    assert diagnoses.count(None) <= missing
