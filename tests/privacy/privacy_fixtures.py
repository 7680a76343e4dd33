"""Helpers of the private-SQL tests: the health.visit standard, its code lists and
a seeded visits file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from entrepot.standards.schema import Standard, load_standard_file

DATASET = "riverside_hospitals.outpatient_visits"
SCHEMA = Path(__file__).parents[2] / "src/entrepot/standards/schemas/health.visit.json"
CODES: dict[str, list[Any]] = {
    "region.district": ["D1", "D2", "D3"],
    "sex": [1, 2],
    "age_band": ["0-17", "18-64", "65+"],
    "diagnosis_group": ["A", "B", "C", "D"],
}


def visit_standard() -> Standard:
    return load_standard_file(SCHEMA)


def write_visits(path: Path, rows: int = 2000, units: int = 300) -> Path:
    """A seeded visits file: every value a function of the row number."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'V' || i AS visit_id, 'P-' || lpad((i % {units})::VARCHAR, 4, '0')
              AS patient_id, DATE '2025-01-01' + (i * 7 % 365)::INT AS visit_date,
              'D' || (1 + i % 3) AS district, (1 + i % 2)::BIGINT AS sex,
              ['0-17', '18-64', '65+'][1 + i % 3] AS age_band,
              chr((65 + i % 5)::INT) AS diagnosis_group, (i * 37 % 6000)::DOUBLE AS cost,
              CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 15)::DOUBLE END AS duration_hours
            FROM range({rows}) t(i)) TO '{path}' (FORMAT parquet)"""
    )
    con.close()
    return path
