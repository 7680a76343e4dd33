"""Odd raw files and mappings: each one is read exactly, or refused with file, line or
key and a fix; none changes a value or loses one on the way."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from entrepot.errors import InvalidInput
from entrepot.standards import get, load_mapping, validate

HEADER = "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
GOOD = "V1,P-0001,2025-03-01,910101,1,25-34,X,120.5,1.5"
SECOND = "V2,P-0002,2025-03-02,910102,2,25-34,X,99,2"


def _rows(count: int, start: int = 10) -> str:
    return "".join(
        f"V{i},P-0001,2025-03-01,910101,1,25-34,X,1,1.5\n" for i in range(start, start + count)
    )


def _fails(path: Path, mapping: Path | None = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate(path, get("health.visit"), mapping)
    assert caught.value.hint
    return caught.value


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- raw files ---------------------------------------------------------------------


def test_a_nul_byte_in_a_text_value_rejects_its_row_by_rule(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    # Far past the bytes sniffed for a binary file, in a value no other rule constrains.
    body = _rows(5000).encode() + b"V3\x00x,P-0002,2025-03-02,910101,2,25-34,X,99,2\n"
    path.write_bytes(f"{HEADER}\n".encode() + body)
    with validate(path, get("health.visit")) as run:
        report = run.report
    assert (report.rows_total, report.rows_invalid) == (5001, 1)
    [row] = report.rows
    assert (row.line, row.reasons) == (5002, ("type:visit_id",))
    assert row.values["visit_id"] == "V3\x00x"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            f"{HEADER}\r\n{GOOD}\r\n{SECOND}\n",
            3,
            "ends with LF where the lines before end with CRLF",
        ),
        (f"{HEADER}\n{GOOD}\n{SECOND}\r\n", 3, "ends with CRLF where the lines before end with LF"),
        (f"{HEADER}\n{GOOD}\r{SECOND}\n", 2, "holds a lone carriage return (CR)"),
        (f"{HEADER}\n{_rows(3000)}{GOOD}\r{SECOND}\n", 3002, "holds a lone carriage return"),
    ],
)
def test_mixed_line_endings_name_the_line_where_they_change(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(text.encode())
    error = _fails(path)
    assert error.details["line"] == line
    assert f"{path}, line {line}: this line {problem}" in error.message
    assert "line ending" in error.hint
    assert "rules could not be evaluated" not in error.message


def test_old_mac_line_endings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(f"{HEADER}\r{GOOD}\r".encode())
    error = _fails(path)
    assert f"{path}, line 1: the lines end with a lone carriage return (CR)" in error.message
    assert "LF or CRLF" in error.hint


@pytest.mark.parametrize("blank", ["\n", "\r\n", "  \n", "\n\n"])
def test_a_blank_line_before_the_header_is_refused(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(f"{blank}{HEADER}\n{GOOD}\n{SECOND}\n".encode())
    error = _fails(path)
    assert f"{path}, line 1: the file starts with a blank line where the header" in error.message
    assert "delete the blank lines" in error.hint


def test_an_unterminated_quote_is_named(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text(f'{HEADER}\n{GOOD}\n"V2,P-0002,2025-03-02,910101,2,25-34,X,99,2\n')
    error = _fails(path)
    assert error.details["line"] == 3
    assert 'a value opens a quote (") that is never closed' in error.message


def test_a_line_longer_than_a_row_may_be_is_named(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"{HEADER}\n{GOOD}\nV2,P-{'x' * 3_000_000},2025-03-02,910101,2,25-34,X,99,2\n")
    error = _fails(path)
    assert error.details["line"] == 3
    assert "this line is longer than" in error.message
    assert "bytes, the most a row may have" in error.message


def test_a_five_digit_year_is_a_type_error_and_its_text_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "years.csv"
    path.write_text(f"{HEADER}\n{GOOD}\nV2,P-0002,99999-01-01,910101,2,25-34,X,99,2\n")
    with validate(path, get("health.visit")) as run:
        assert run.report.rows[0].reasons == ("type:visit_date",)
        assert run.report.rows[0].values["visit_date"] == "99999-01-01"
        run.write_rejected(tmp_path / "rejected.parquet")
    kept = duckdb.connect().execute(
        f"SELECT line, visit_date FROM '{tmp_path / 'rejected.parquet'}'"
    )
    assert kept.fetchall() == [(3, "99999-01-01")]


# -- mappings ----------------------------------------------------------------------

MAPPED = (
    "vid,pid,date,district,sex,age_band,diagnosis_group,cost,duration_hours\n"
    "V1,P-0001,01/03/2025,0101,M,25-34,X,12050,1\n"
    "V2,P-0002,02/03/2025,0102,F,25-34,X,8000,2\n"
)
MAPPING = """\
columns:
  visit_id: vid
  patient_id: pid
  visit_date: {from: date, date_format: "%d/%m/%Y"}
  district: {from: district, codes: {"0101": "910101", "0102": "910102"}}
  sex: {from: sex, codes: {M: "1", F: "2"}}
  cost: {from: cost, unit: fen_to_yuan}
"""


def _mapped_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapped.csv"
    path.write_text(MAPPED)
    return path


def test_unquoted_codes_keep_the_text_they_were_written_as(tmp_path: Path) -> None:
    # YAML 1.1 reads 0101 as the octal number 65; a code is the text written.
    text = MAPPING.replace('{"0101": "910101", "0102": "910102"}', "{0101: 910101, 0102: 910102}")
    with validate(_mapped_file(tmp_path), get("health.visit"), _mapping(tmp_path, text)) as run:
        assert (run.report.rows_total, run.report.rows_invalid) == (2, 0)
        run.write_valid(tmp_path / "valid.parquet")
    rows = (
        duckdb.connect().execute(f"SELECT district FROM '{tmp_path / 'valid.parquet'}'").fetchall()
    )
    assert rows == [("910101",), ("910102",)]


@pytest.mark.parametrize(
    ("written", "kept"), [("1.10", "1.10"), ("1:30", "1:30"), ("0x1F", "0x1F")]
)
def test_an_unquoted_constant_is_kept_as_written(tmp_path: Path, written: str, kept: str) -> None:
    text = MAPPING.replace("visit_id: vid", f"visit_id: {{constant: {written}}}")
    mapping = load_mapping(_mapping(tmp_path, text))
    entry = mapping.column("visit_id")
    assert entry is not None
    assert entry.constant == kept


@pytest.mark.parametrize("factor", [".nan", ".inf", "-.inf", "1e400", "1" + "0" * 400])
def test_a_factor_that_is_not_a_finite_number_is_refused_by_key(
    tmp_path: Path, factor: str
) -> None:
    path = _mapping(tmp_path, MAPPING.replace("unit: fen_to_yuan", f"factor: {factor}"))
    error = _fails(_mapped_file(tmp_path), path)
    assert error.message.startswith(f"{path}: columns.cost.factor: expected a finite, non-zero")


@pytest.mark.parametrize("fmt", ["%Q/%m/%Y", "%d/%m/%"])
def test_a_date_format_duckdb_cannot_read_is_refused_by_key(tmp_path: Path, fmt: str) -> None:
    path = _mapping(tmp_path, MAPPING.replace("%d/%m/%Y", fmt))
    error = _fails(_mapped_file(tmp_path), path)
    assert error.message.startswith(
        f"{path}: columns.visit_date.date_format: '{fmt}' is not a date format"
    )
    assert "rules could not be evaluated" not in error.message


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{a: " * 5000 + "1" + "}" * 5000])
def test_yaml_nested_too_deeply_is_refused(tmp_path: Path, nested: str) -> None:
    path = _mapping(tmp_path, f"columns: {nested}\n")
    with pytest.raises(InvalidInput, match="nested too deeply"):
        load_mapping(path)


@pytest.mark.parametrize("key", ["delimiter", "quote"])
def test_a_line_break_as_delimiter_or_quote_is_refused(tmp_path: Path, key: str) -> None:
    path = _mapping(tmp_path, f'source: {{{key}: "\\n"}}\n')
    with pytest.raises(InvalidInput, match=rf"source\.{key}: a line break"):
        load_mapping(path)


@pytest.mark.parametrize("kind", ["pipe", "device"])
def test_a_mapping_or_code_file_that_is_no_file_is_refused_without_reading_it(
    tmp_path: Path, kind: str
) -> None:
    special = tmp_path / "special"
    if kind == "pipe":
        os.mkfifo(special)  # no writer: reading it would wait for ever
    else:
        special.symlink_to("/dev/zero")  # never ends
    with pytest.raises(InvalidInput, match=r"cannot be read as a mapping \(not a regular file\)"):
        load_mapping(special)
    text = MAPPING.replace('codes: {"0101": "910101", "0102": "910102"}', f"codes_file: {special}")
    with pytest.raises(InvalidInput, match=r"codes_file: .*special cannot be read \(not a regular"):
        load_mapping(_mapping(tmp_path, text))


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ("[a, a]", "'a' repeats source.columns[0]"),
        ("[a, A]", "'A' repeats source.columns[0]"),
        ("[a, '']", "a column needs a name"),
    ],
)
def test_names_of_a_file_without_header_are_each_given_once(
    tmp_path: Path, names: str, problem: str
) -> None:
    path = _mapping(tmp_path, f"source: {{header: false, columns: {names}}}\n")
    with pytest.raises(InvalidInput) as caught:
        load_mapping(path)
    assert caught.value.message == f"{path}: source.columns[1]: {problem}" + (
        " (names ignore case)" if "repeats" in problem else ""
    )
