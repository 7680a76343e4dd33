"""Raw files in the health.visit standard, with defects where a test asks for them."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path

HEADER = (
    "visit_id",
    "patient_id",
    "visit_date",
    "district",
    "sex",
    "age_band",
    "diagnosis_group",
    "cost",
    "duration_hours",
)
DISTRICTS = ("910101", "910102", "910103", "910104")
AGE_BANDS = ("00-04", "05-14", "15-24", "25-34")
DIAGNOSES = ("I", "II", "III", "IV")

WriteVisits = Callable[..., Path]


def visit_rows(rows: int, *, bad: int = 0, seed: int = 7, prefix: str = "V") -> list[list[str]]:
    """``rows`` rows of which the last ``bad`` have a negative cost (a minimum violation)."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        cost = -5.0 if i >= rows - bad else round(rng.uniform(10, 900), 2)
        out.append(
            [
                f"{prefix}{i:07d}",
                f"P-{rng.randrange(10_000):05d}",
                f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                rng.choice(DISTRICTS),
                str(rng.choice((1, 2))),
                rng.choice(AGE_BANDS),
                rng.choice(DIAGNOSES),
                f"{cost:.2f}",
                "" if i % 10 == 0 else f"{rng.uniform(0.1, 5):.2f}",
            ]
        )
    return out


def write_visits_csv(path: Path, rows: int, *, bad: int = 0, seed: int = 7) -> Path:
    """Write a health.visit CSV of ``rows`` rows, the last ``bad`` of them invalid."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(visit_rows(rows, bad=bad, seed=seed))
    return path
