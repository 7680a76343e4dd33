"""Two hospital groups in two provinces: the same standard, two local formats.

Riverside Hospitals (Lanshan province) export from an old HIS: GBK text with Chinese
headers and Windows line ends, day-first dates, costs in fen, minutes on site and the
province's own district numbering. Highland Health (Qinghe province) exports UTF-8
with a byte-order mark, ISO dates, yuan, hours and standard district codes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from entrepot.demo._context import Context, age_band, day_numbers, format_times, mapping_codes
from entrepot.demo._table import RawTable
from entrepot.demo.manifest import DemoFile

# Diagnosis groups (ICD-10 chapters) of outpatient visits and their relative frequency.
_DIAGNOSES = {
    "X": 18,
    "XVIII": 12,
    "XIII": 11,
    "IX": 10,
    "XI": 9,
    "IV": 7,
    "XIX": 7,
    "XIV": 5,
    "XII": 4,
    "VI": 3,
    "V": 3,
    "I": 3,
    "VII": 2,
    "VIII": 2,
    "XV": 2,
    "II": 2,
    "XXI": 2,
    "III": 1,
}
# Cost multipliers of the groups that are dearer than a routine consultation.
_COST_FACTOR = {"II": 6.0, "IX": 2.0, "XV": 3.0, "XIX": 1.8, "IV": 1.4}
# Riverside's own district numbering (local → standard code), shipped with its mapping.
RIVERSIDE_DISTRICTS = "riverside-districts.csv"

# What a careless export writes where a day-first date belongs.
_BAD_DAY_FIRST_DATES = ("31/02/2025", "30/02/2025", "00/03/2025", "2025-03-14", "14.03.2025", "N/A")

Visits = dict[str, npt.NDArray[Any]]


def _defects(rows: int, share: float = 0.004) -> int:
    """How many rows get each kind of defect: a fraction of the file, at least three."""
    return max(3, round(rows * share))


def _visits(ctx: Context, province: int, base_rows: int) -> Visits:
    """Visits at the hospitals of ``province``: mostly its residents, some visitors."""
    rng, people = ctx.rng, ctx.population
    n = ctx.rows(base_rows)
    residents = people.living_in(province)
    visitors = people.living_in(1 - province)
    # Frequent attenders: a skewed number of visits per patient.
    weights = rng.gamma(0.6, size=len(residents))
    person = rng.choice(residents, size=n, p=weights / weights.sum())
    from_elsewhere = rng.random(n) < 0.04
    person[from_elsewhere] = rng.choice(visitors, size=int(from_elsewhere.sum()))
    districts = np.asarray(ctx.regions[province].districts)
    facility = people.district[person].astype(object)
    away = np.isin(facility, districts, invert=True) | (rng.random(n) < 0.15)
    facility[away] = rng.choice(districts, size=int(away.sum()))
    groups = np.asarray(list(_DIAGNOSES))
    freq = np.asarray(list(_DIAGNOSES.values()), dtype=float)
    diagnosis = rng.choice(groups, size=n, p=freq / freq.sum())
    factor = np.array([_COST_FACTOR.get(str(g), 1.0) for g in diagnosis])
    cost_fen = np.clip(np.round(rng.lognormal(np.log(260.0), 0.8, n) * factor * 100), 500, 2e7)
    minutes = np.clip(np.round(rng.gamma(2.0, 45.0, n)), 10, 600).astype(np.int64)
    day = np.sort(day_numbers(rng, n, months=6))
    return {
        "person": person,
        "day": day,
        "district": facility.astype(str),
        "sex": people.sex[person],
        "age_band": age_band(people.age[person]),
        "diagnosis": diagnosis,
        "cost_fen": cost_fen.astype(np.int64),
        "minutes": minutes,
    }


def _text(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return np.asarray([str(v) for v in values], dtype=object)


def riverside(ctx: Context, directory: Path) -> tuple[DemoFile, RawTable]:
    visits = _visits(ctx, province=0, base_rows=30_000)
    rng, n = ctx.rng, len(visits["person"])
    local = {standard: code for code, standard in mapping_codes(RIVERSIDE_DISTRICTS).items()}
    table = RawTable(
        {
            "visit_id": np.asarray([f"RV2025{i:06d}" for i in range(1, n + 1)], dtype=object),
            "patient_id": ctx.population.resident_id[visits["person"]],
            "visit_date": format_times(visits["day"], 0, "%d/%m/%Y"),
            "district": np.asarray([local[d] for d in visits["district"]], dtype=object),
            "sex": np.where(visits["sex"] == 1, "男", "女").astype(object),
            "age_band": visits["age_band"],
            "diagnosis_group": visits["diagnosis"],
            "cost": _text(visits["cost_fen"]),
            "duration_hours": _text(visits["minutes"]),
        },
        visits["person"],
    )
    k = _defects(n)
    table.spoil(rng, k, "visit_date", "type:visit_date", _impossible_day_first_dates(rng))
    table.spoil(rng, k, "district", "codelist:district", lambda rows: ["Q99"] * len(rows))
    table.spoil(
        rng, k, "cost", "minimum:cost", lambda rows: [f"-{v}" for v in table.columns["cost"][rows]]
    )
    table.spoil(
        rng, k, "diagnosis_group", "required:diagnosis_group", lambda rows: [""] * len(rows)
    )
    table.duplicate(rng, k, "primary_key:visit_id")
    path = directory / "riverside-visits-2025.csv"
    table.write_csv(
        path,
        {
            "visit_id": "就诊流水号",
            "patient_id": "居民编号",
            "visit_date": "就诊日期",
            "district": "院区区县",
            "sex": "性别",
            "age_band": "年龄段",
            "diagnosis_group": "诊断大类",
            "cost": "费用(分)",
            "duration_hours": "就诊时长(分钟)",
        },
        encoding="gbk",
        line_end="\r\n",
    )
    entry = DemoFile(
        provider="riverside-hospitals",
        provider_name="Riverside Hospitals",
        path=path.name,
        mapping="riverside-visits.yaml",
        standard="health.visit",
        dataset="outpatient-visits",
        title="Outpatient visits 2025",
        regions=("910000",),
        sector="Q",
        description="Outpatient visits at the Riverside hospital group in Lanshan province, "
        "January to June: district, diagnosis group, cost and time on site.",
        encoding="gbk",
        rows=len(table),
        people=len(np.unique(table.person)),
        defects=dict(table.defects),
    )
    return entry, table


def _impossible_day_first_dates(
    rng: np.random.Generator,
) -> Callable[[npt.NDArray[np.int64]], list[str]]:
    """Day-first dates that do not exist, or that came out in another format."""

    def make(rows: npt.NDArray[np.int64]) -> list[str]:
        return [str(v) for v in rng.choice(_BAD_DAY_FIRST_DATES, size=len(rows))]

    return make


def highland(ctx: Context, directory: Path) -> tuple[DemoFile, RawTable]:
    visits = _visits(ctx, province=1, base_rows=24_000)
    rng, n = ctx.rng, len(visits["person"])
    table = RawTable(
        {
            "visit_id": np.asarray([f"HH-25-{i:07d}" for i in range(1, n + 1)], dtype=object),
            "patient_id": ctx.population.resident_id[visits["person"]],
            "visit_date": format_times(visits["day"], 0, "%Y-%m-%d"),
            "district": visits["district"].astype(object),
            "sex": np.where(visits["sex"] == 1, "M", "F").astype(object),
            "age_band": visits["age_band"],
            "diagnosis_group": visits["diagnosis"],
            "cost": np.asarray([f"{v / 100:.2f}" for v in visits["cost_fen"]], dtype=object),
            "duration_hours": np.asarray(
                [f"{m / 60:.2f}" for m in visits["minutes"]], dtype=object
            ),
        },
        visits["person"],
    )
    k = _defects(n)
    table.spoil(rng, k, "visit_date", "minimum:visit_date", lambda rows: ["1900-01-01"] * len(rows))
    table.spoil(
        rng,
        k,
        "duration_hours",
        "maximum:duration_hours",
        lambda rows: [f"{h:.2f}" for h in rng.uniform(49, 400, len(rows))],
    )
    table.spoil(
        rng,
        k,
        "cost",
        "type:cost",
        lambda rows: [f"{float(v):,.2f}" for v in rng.uniform(1000, 90000, len(rows))],
    )
    table.spoil(
        rng,
        k,
        "patient_id",
        "pattern:patient_id",
        lambda rows: [str(v).lower() for v in table.columns["patient_id"][rows]],
    )
    table.spoil(rng, k, "age_band", "codelist:age_band", lambda rows: ["65+"] * len(rows))
    table.duplicate(rng, k, "primary_key:visit_id")
    path = directory / "highland-visits-2025.csv"
    table.write_csv(
        path,
        {
            "visit_id": "VisitID",
            "patient_id": "PatientNo",
            "visit_date": "VisitDate",
            "district": "DistrictCode",
            "sex": "Gender",
            "age_band": "AgeBand",
            "diagnosis_group": "ICDChapter",
            "cost": "CostYuan",
            "duration_hours": "HoursOnSite",
        },
        encoding="utf-8-sig",
    )
    entry = DemoFile(
        provider="highland-health",
        provider_name="Highland Health Group",
        path=path.name,
        mapping="highland-visits.yaml",
        standard="health.visit",
        dataset="clinic-visits",
        title="Clinic visits 2025",
        regions=("920000",),
        sector="Q",
        description="Visits to Highland Health clinics in Qinghe province, January to June: "
        "district, diagnosis group, cost and hours on site.",
        encoding="utf-8-sig",
        rows=len(table),
        people=len(np.unique(table.person)),
        defects=dict(table.defects),
    )
    return entry, table
