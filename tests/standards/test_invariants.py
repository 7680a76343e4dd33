"""Properties of validation over generated rows: valid rows pass, one defect is one flag."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.standards import codelist, get, validate

STANDARD = get("health.visit")
COLUMNS = STANDARD.field_names

valid_rows = st.fixed_dictionaries(
    {
        "patient_id": st.from_regex(r"\A[A-Z0-9-]{4,12}\Z"),
        "visit_date": st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(str),
        "district": st.sampled_from(codelist("region.district").codes),
        "sex": st.sampled_from(codelist("sex").codes),
        "age_band": st.sampled_from(codelist("age_band").codes),
        "diagnosis_group": st.sampled_from(codelist("diagnosis_group").codes),
        "cost": st.decimals(0, 1_000_000, places=2).map(str),
        "duration_hours": st.one_of(st.just(""), st.integers(0, 48).map(str)),
    }
)

# (column, bad text, the one rule it must break)
DEFECTS = [
    ("patient_id", "", "required"),
    ("patient_id", "ab", "pattern"),
    ("visit_date", "2021/03/01", "type"),
    ("visit_date", "1999-12-31", "minimum"),
    ("visit_date", "2031-01-01", "maximum"),
    ("district", "000000", "codelist"),
    ("sex", "12.5", "type"),
    ("sex", "5", "codelist"),
    ("cost", "abc", "type"),
    ("cost", "-1", "minimum"),
    ("cost", "1000000.5", "maximum"),
    ("duration_hours", "49", "maximum"),
    ("visit_id", "DUPLICATE", "primary_key"),
]


def _write(rows: list[dict[str, str]], folder: Path) -> Path:
    path = folder / "visits.csv"
    lines = [",".join(COLUMNS)] + [",".join(row[c] for c in COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _numbered(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{**row, "visit_id": f"V{i}"} for i, row in enumerate(rows)]


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rows=st.lists(valid_rows, min_size=1, max_size=30))
def test_generated_valid_rows_are_never_flagged(rows: list[dict[str, str]]) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        validate(_write(_numbered(rows), Path(folder)), STANDARD) as run,
    ):
        report = run.report
    assert report.valid, report.to_dict()
    assert report.rows_total == len(rows)


@SETTINGS
@given(
    rows=st.lists(valid_rows, min_size=2, max_size=20),
    where=st.integers(min_value=1),
    defect=st.sampled_from(DEFECTS),
)
def test_one_defect_is_flagged_for_exactly_its_rule_and_column(
    rows: list[dict[str, str]], where: int, defect: tuple[str, str, str]
) -> None:
    rows = _numbered(rows)
    index = 1 + where % (len(rows) - 1)
    column, text, rule = defect
    rows[index][column] = rows[index - 1]["visit_id"] if text == "DUPLICATE" else text
    with (
        tempfile.TemporaryDirectory() as folder,
        validate(_write(rows, Path(folder)), STANDARD) as run,
    ):
        report = run.report
    assert [(v.rule, v.column, v.count) for v in report.violations] == [(rule, column, 1)]
    assert [(r.line, r.reasons) for r in report.rows] == [(index + 2, (f"{rule}:{column}",))]


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(valid_rows, st.one_of(st.none(), st.sampled_from(DEFECTS[:-1]))),
        min_size=1,
        max_size=40,
    ),
    report_rows=st.integers(0, 5),
)
def test_counts_always_add_up(
    rows: list[tuple[dict[str, str], tuple[str, str, str] | None]], report_rows: int
) -> None:
    broken = 0
    data = []
    for row, defect in rows:
        if defect is not None:
            row = {**row, defect[0]: defect[1]}
            broken += 1
        data.append(row)
    with (
        tempfile.TemporaryDirectory() as folder,
        validate(_write(_numbered(data), Path(folder)), STANDARD, report_rows=report_rows) as run,
    ):
        report = run.report
        valid = run.write_valid(Path(folder) / "valid.parquet")
        rejected = run.write_rejected(Path(folder) / "rejected.parquet")
    assert report.rows_total == len(rows)
    assert report.rows_invalid == broken
    assert report.rows_valid + report.rows_invalid == report.rows_total
    assert valid + rejected == report.rows_total
    assert sum(v.count for v in report.violations) == broken
    assert len(report.rows) == min(report_rows, broken)
