"""A seeded visits file with a skewed number of visits per patient, in the standard's form.

Patients visit at rates drawn from a lognormal (σ 1.3): most come a few times a year, a
few hundred times (the heaviest about 100× the mean), as frequent attenders do. Each
patient has a home district among the 20 of province 910000 (Zipf-like popularity), a
sex (1 or 2, a few 9) and an age band; each visit a day of 2025 (a winter peak), a
facility (the home district 85% of the time), a diagnosis group (18 of the code list's
22 chapters, ICD-like frequencies), a lognormal cost (some above the standard's bound
of 5,000) and a duration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from entrepot.standards import codelist, get

__all__ = ["write_visits"]

# ICD-10 chapters seen in outpatient visits and their relative frequencies; XVI, XVII,
# XX and XXII are in the code list but never in the data (groups that must stay empty).
DIAGNOSES = {
    "X": 18, "XVIII": 12, "XIII": 11, "IX": 10, "XI": 9, "IV": 7, "XIX": 7, "XIV": 5,
    "XII": 4, "VI": 3, "V": 3, "I": 3, "VII": 2, "VIII": 2, "XV": 2, "II": 2, "XXI": 2,
    "III": 1,
}  # fmt: skip
COST_FACTOR = {"II": 6.0, "IX": 2.0, "XV": 3.0, "XIX": 1.8, "IV": 1.4}
PROVINCE = "910000"
ROWS_PER_PATIENT = 6.5
SEED = 20250101


def districts() -> list[str]:
    return [code for code in codelist("region.district").codes if code.startswith("91")]


def write_visits(path: Path, rows: int, seed: int = SEED) -> Path:
    """Write ``rows`` visits as a CSV file in the columns of ``health.visit``."""
    rng = np.random.default_rng(seed)
    people = max(int(rows / ROWS_PER_PATIENT), 1)
    rate = rng.lognormal(0.0, 1.3, people)
    patient = rng.choice(people, size=rows, p=rate / rate.sum())
    places = np.asarray(districts())
    popularity = 1 / np.arange(1, len(places) + 1) ** 0.8
    home = rng.choice(len(places), size=people, p=popularity / popularity.sum())
    sex = rng.choice([1, 2, 9], size=people, p=[0.488, 0.51, 0.002])
    bands = np.asarray(codelist("age_band").codes)
    band_weights = np.array([5, 9, 8, 12, 12, 13, 14, 13, 9, 5], dtype=float)
    band = rng.choice(len(bands), size=people, p=band_weights / band_weights.sum())
    facility = home[patient].copy()
    away = rng.random(rows) < 0.15
    facility[away] = rng.integers(0, len(places), int(away.sum()))
    days = np.arange(365)
    season = 1.0 + 0.35 * np.cos(2 * np.pi * days / 365)
    day = rng.choice(days, size=rows, p=season / season.sum())
    groups = np.asarray(list(DIAGNOSES))
    freq = np.asarray(list(DIAGNOSES.values()), dtype=float)
    diagnosis = rng.choice(len(groups), size=rows, p=freq / freq.sum())
    factor = np.array([COST_FACTOR.get(str(g), 1.0) for g in groups])[diagnosis]
    cost = np.round(np.clip(rng.lognormal(np.log(260.0), 0.9, rows) * factor, 5, 2e5), 2)
    hours = np.round(np.clip(rng.gamma(2.0, 0.75, rows), 0.1, 24.0), 2)
    first = np.datetime64("2025-01-01")
    table = pa.table(
        {
            "visit_id": [f"V{i:08d}" for i in range(rows)],
            "patient_id": np.char.add("P-", np.char.zfill(patient.astype(str), 7)),
            "visit_date": pa.array(first + day.astype("timedelta64[D]")),
            "district": places[facility],
            "sex": sex[patient],
            "age_band": bands[band[patient]],
            "diagnosis_group": groups[diagnosis],
            "cost": cost,
            "duration_hours": hours,
        }
    )
    assert table.column_names == get("health.visit").field_names
    pacsv.write_csv(table, path)
    return path
