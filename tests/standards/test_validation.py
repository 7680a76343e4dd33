"""Validation through the Python API: every rule, every mapping feature, the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from entrepot.errors import InvalidInput
from entrepot.standards import get, load_mapping, parse_mapping, validate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "standards"
HEADER = "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
GOOD = "V1,P-0001,2025-03-01,910101,1,25-34,X,120.5,1.5"


def _csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "v.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _parquet(path: Path) -> list[tuple[object, ...]]:
    return duckdb.sql(f"SELECT * FROM '{path}'").fetchall()


@pytest.mark.parametrize(
    ("row", "rule", "column"),
    [
        ("V2,,2025-03-01,910101,1,25-34,X,1,1", "required", "patient_id"),
        ("V2,P-0002,2025/03/01,910101,1,25-34,X,1,1", "type", "visit_date"),
        ("V2,P-0002,2025-02-30,910101,1,25-34,X,1,1", "type", "visit_date"),
        ("V2,P-0002,2025-03-01,910101,1.5,25-34,X,1,1", "type", "sex"),
        ("V2,P-0002,2025-03-01,910101,1,25-34,X,12.5.1,1", "type", "cost"),
        ("V2,P-0002,1999-12-31,910101,1,25-34,X,1,1", "minimum", "visit_date"),
        ("V2,P-0002,2025-03-01,910101,1,25-34,X,-0.01,1", "minimum", "cost"),
        ("V2,P-0002,2025-03-01,910101,1,25-34,X,1,48.5", "maximum", "duration_hours"),
        ("V2,P-0002,2025-03-01,910199,1,25-34,X,1,1", "codelist", "district"),
        ("V2,P-0002,2025-03-01,910101,3,25-34,X,1,1", "codelist", "sex"),
        ("V2,p-0002,2025-03-01,910101,1,25-34,X,1,1", "pattern", "patient_id"),
        ("V1,P-0002,2025-03-01,910101,1,25-34,X,1,1", "primary_key", "visit_id"),
    ],
)
def test_one_defect_breaks_exactly_its_rule(
    tmp_path: Path, row: str, rule: str, column: str
) -> None:
    with validate(_csv(tmp_path, GOOD, row), get("health.visit")) as run:
        report = run.report
    assert (report.rows_total, report.rows_valid, report.rows_invalid) == (2, 1, 1)
    assert [(v.rule, v.column, v.count) for v in report.violations] == [(rule, column, 1)]
    assert report.rows[0].line == 3
    assert report.rows[0].reasons == (f"{rule}:{column}",)


def test_strict_types_refuse_what_try_cast_accepts(tmp_path: Path) -> None:
    # TRY_CAST would turn 12.5 into 13 and accept 2025/03/01 as a date.
    rows = [
        f"V{i},P-000{i},2025-03-01,910101,{sex},25-34,X,1,1"
        for i, sex in enumerate(["1.0", " 1", "1e0", "0x1", "+1", "01"])
    ]
    with validate(_csv(tmp_path, *rows), get("health.visit")) as run:
        flagged = {row.values["sex"]: row.reasons for row in run.report.rows}
    assert set(flagged) == {"1.0", " 1", "1e0", "0x1"}
    assert all(reasons == ("type:sex",) for reasons in flagged.values())


def test_enum_and_enum_typed_values(tmp_path: Path) -> None:
    header = "transaction_id,person_id,merchant_sector,district,channel,amount,paid_at"
    rows = [
        "T1,PER-1,G,920101,card,10,2025-01-01T10:00:00",
        "T2,PER-2,G,920101,cash,10,2025-01-01 10:00:00",
        "T3,PER-3,G,920101,qr,10,2025-01-01T10:00:00Z",
        "T3,PER-3,G,920101,qr,10,2025-13-01T10:00:00",
    ]
    with validate(_csv(tmp_path, *rows, header=header), get("payments.transaction")) as run:
        counts = {(v.rule, v.column): v.count for v in run.report.violations}
    assert counts == {
        ("enum", "channel"): 1,
        ("primary_key", "transaction_id"): 1,
        ("type", "paid_at"): 1,
    }


def test_foreign_key_checks_district_lies_in_city(tmp_path: Path) -> None:
    header = "phone_id,city,district,hour,dwell_minutes"
    rows = [
        "0123456789abcdef,910100,910101,2025-01-01T10:00:00,30",
        "0123456789abcdef,910200,910102,2025-01-01T10:00:00,30",  # wrong city
        "0123456789abcdef,910100,919999,2025-01-01T11:00:00,30",  # unknown district
        "0123456789abcdef,910100,910101,2025-01-01T10:00:00,20",  # repeats key of row 1
    ]
    with validate(_csv(tmp_path, *rows, header=header), get("mobility.presence")) as run:
        lines = {row.line: row.reasons for row in run.report.rows}
    assert lines == {
        3: ("foreign_key:district,city",),
        4: ("codelist:district",),
        5: ("primary_key:phone_id,district,hour",),
    }


def test_a_repeated_key_in_a_file_in_key_order_is_flagged(tmp_path: Path) -> None:
    header = "phone_id,city,district,hour,dwell_minutes"
    rows = [
        "0123456789abcdef,910100,910101,2025-01-01T10:00:00,30",
        "0123456789abcdef,910100,910101,2025-01-01T11:00:00,30",
        "0123456789abcdef,910100,910101,2025-01-01T11:00:00,20",  # repeats key of row 2
        "0123456789abcdef,910100,910102,2025-01-01T09:00:00,30",  # a later district
    ]
    with validate(_csv(tmp_path, *rows, header=header), get("mobility.presence")) as run:
        lines = {row.line: row.reasons for row in run.report.rows}
    assert lines == {4: ("primary_key:phone_id,district,hour",)}


def test_unique_marks_every_repeat_after_the_first(tmp_path: Path) -> None:
    header = "firm_id,sector,region,size_band,founded,employees"
    firm = "91110000MA01ABCD1X"
    rows = [f"{firm},C,910100,small,2001-02-03,12"] * 3 + ["91110000MA01ABCD2Y,C,910100,micro,,"]
    with validate(_csv(tmp_path, *rows, header=header), get("org.registry")) as run:
        assert [r.line for r in run.report.rows] == [3, 4]
        assert run.report.count("primary_key", "firm_id") == 2
        assert run.report.rows_valid == 2


def test_outputs_split_every_row_and_keep_types(tmp_path: Path) -> None:
    bad = "V2,P-0002,2025/03/01,910101,1,25-34,X,1,1"
    with validate(_csv(tmp_path, GOOD, bad, GOOD.replace("V1", "V3")), get("health.visit")) as run:
        assert run.write_valid(tmp_path / "valid.parquet") == 2
        assert run.write_rejected(tmp_path / "rejected.parquet") == 1
    valid = duckdb.sql(f"SELECT * FROM '{tmp_path / 'valid.parquet'}'")
    assert [str(t).upper() for t in valid.types] == [
        "VARCHAR",
        "VARCHAR",
        "DATE",
        "VARCHAR",
        "BIGINT",
        "VARCHAR",
        "VARCHAR",
        "DOUBLE",
        "DOUBLE",
    ]
    assert [r[0] for r in valid.fetchall()] == ["V1", "V3"]
    rejected = _parquet(tmp_path / "rejected.parquet")
    assert rejected == [(3, ["type:visit_date"], *bad.split(","))]


def test_the_riverside_mapping_matches_the_golden_report() -> None:
    with validate(
        FIXTURES / "riverside.csv", get("health.visit"), FIXTURES / "riverside.yaml"
    ) as run:
        report = run.report.to_dict()
    golden = json.loads((FIXTURES / "riverside.report.json").read_text(encoding="utf-8"))
    assert report == golden


def test_mapping_converts_units_dates_and_codes(tmp_path: Path) -> None:
    with validate(
        FIXTURES / "riverside.csv", get("health.visit"), load_mapping(FIXTURES / "riverside.yaml")
    ) as run:
        run.write_valid(tmp_path / "valid.parquet")
    rows = duckdb.sql(
        f"SELECT visit_id, visit_date::VARCHAR, district, sex, cost, duration_hours "
        f"FROM '{tmp_path / 'valid.parquet'}' ORDER BY visit_id"
    ).fetchall()
    assert rows == [
        ("R0001", "2025-03-01", "910101", 1, 120.5, 1.5),
        ("R0002", "2025-03-02", "910102", 2, 80.0, None),
    ]


def test_gbk_epoch_and_constants(tmp_path: Path) -> None:
    with validate(
        FIXTURES / "eastbank-gbk.csv", get("payments.transaction"), FIXTURES / "eastbank.yaml"
    ) as run:
        run.write_valid(tmp_path / "valid.parquet")
        assert run.report.ignored_columns == ()
    valid = tmp_path / "valid.parquet"
    rows = duckdb.sql(
        f"SELECT transaction_id, channel, amount, paid_at::VARCHAR FROM '{valid}'"
    ).fetchall()
    assert rows == [
        ("TX-1", "card", 19.99, "2025-01-01 00:00:00"),
        ("TX-2", "card", 0.5, "2025-01-01 01:00:00"),
    ]


def test_other_date_formats_and_factors(tmp_path: Path) -> None:
    source = _csv(
        tmp_path,
        "V1;P-0001;01/03/2025;910101;1;25-34;X;1,5;30",
        "V2;P-0002;31/02/2025;910101;1;25-34;X;2;90",
        header="id;patient;day;district;sex;age;dx;cost_wan;minutes",
    )
    mapping = parse_mapping(
        {
            "source": {"delimiter": ";"},
            "columns": {
                "visit_id": "id",
                "patient_id": "patient",
                "visit_date": {"from": "day", "date_format": "%d/%m/%Y"},
                "age_band": "age",
                "diagnosis_group": "dx",
                "cost": {"from": "cost_wan", "factor": 0.001},
                "duration_hours": {"from": "minutes", "factor": 1 / 60},
            },
        },
        "inline",
    )
    with validate(source, get("health.visit"), mapping) as run:
        report = run.report
        run.write_valid(tmp_path / "valid.parquet")
    assert [(r.line, r.reasons) for r in report.rows] == [
        (2, ("type:cost",)),
        (3, ("type:visit_date",)),
    ]
    assert report.ignored_columns == ()


def test_report_rows_caps_the_list_not_the_counts(tmp_path: Path) -> None:
    rows = [f"V{i},P-{i:04d},2025-03-01,910101,7,25-34,X,1,1" for i in range(50)]
    with validate(_csv(tmp_path, *rows), get("health.visit"), report_rows=5) as run:
        assert len(run.report.rows) == 5
        assert run.report.count("codelist", "sex") == 50
        assert [r.line for r in run.report.rows] == [2, 3, 4, 5, 6]


def test_extra_columns_are_ignored_and_said(tmp_path: Path) -> None:
    source = _csv(tmp_path, GOOD + ",secret", header=HEADER + ",national_id")
    with validate(source, get("health.visit")) as run:
        assert run.report.valid
        assert run.report.ignored_columns == ("national_id",)


def test_optional_absent_columns_are_null(tmp_path: Path) -> None:
    header = HEADER.removesuffix(",duration_hours")
    source = _csv(tmp_path, GOOD.removesuffix(",1.5"), header=header)
    with validate(source, get("health.visit")) as run:
        assert run.report.valid
        run.write_valid(tmp_path / "valid.parquet")
    assert _parquet(tmp_path / "valid.parquet")[0][-1] is None


def test_raise_if_invalid_carries_the_report(tmp_path: Path) -> None:
    from entrepot.errors import ValidationFailed

    bad = "V2,P-0002,2025/03/01,910101,1,25-34,X,1,1"
    with (
        validate(_csv(tmp_path, GOOD, bad), get("health.visit")) as run,
        pytest.raises(ValidationFailed) as caught,
    ):
        run.raise_if_invalid()
    assert caught.value.details["report"]["rows_invalid"] == 1


def test_a_file_without_header_uses_the_mapping_names(tmp_path: Path) -> None:
    path = tmp_path / "firms.tsv"
    path.write_text("91110000MA01ABCD1X\tC\t910100\tsmall\t2001-02-03\t12\nF1\tC\t910100\tx\t\t\n")
    names = ["firm_id", "sector", "region", "size_band", "founded", "employees"]
    mapping = parse_mapping(
        {"source": {"header": False, "delimiter": "\\t", "columns": names}}, "m.yaml"
    )
    with validate(path, get("org.registry"), mapping) as run:
        assert [(r.line, r.reasons) for r in run.report.rows] == [
            (2, ("pattern:firm_id", "codelist:size_band"))
        ]


def test_a_report_survives_its_json_form() -> None:
    from entrepot.standards import Report

    golden = json.loads((FIXTURES / "riverside.report.json").read_text(encoding="utf-8"))
    report = Report.from_dict(golden)
    assert report.to_dict() == golden
    assert report.columns == tuple(get("health.visit").field_names)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [(r"(a)\1", r"invalid escape sequence: \1"), (r"(?=a)a", "invalid perl operator: (?=")],
)
def test_a_pattern_duckdb_cannot_match_is_refused_naming_its_field(
    tmp_path: Path, pattern: str, reason: str
) -> None:
    # Python compiles it; DuckDB's RE2, which runs the check, has no back-references
    # nor look-arounds (and no catastrophic backtracking either).
    fields = [{"name": "a", "type": "string", "constraints": {"pattern": pattern}}]
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"name": "t.x", "fields": fields}))
    with pytest.raises(InvalidInput) as caught:
        validate(_csv(tmp_path, "x", header="a"), get(str(schema)))
    message = caught.value.message
    assert message.startswith(f"standard t.x: field a: pattern {pattern!r} cannot be matched")
    assert reason in message
    assert "RE2" in str(caught.value.hint)
