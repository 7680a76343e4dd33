"""Files that cannot be read: one clear error each (file, line, fix), never a half result."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from entrepot.errors import InvalidInput, LimitExceeded, NotFound
from entrepot.standards import get, parse_mapping, validate

HEADER = "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
GOOD = "V1,P-0001,2025-03-01,910101,1,25-34,X,120.5,1.5"


def _fails(path: Path, mapping: object = None) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate(path, get("health.visit"), mapping)  # type: ignore[arg-type]
    error = caught.value
    assert str(path) in error.message
    assert error.hint
    return error


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert "empty (0 bytes)" in _fails(path).message


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)))
    error = _fails(path)
    assert "binary file" in error.message
    assert "CSV" in error.hint


def test_utf16_file(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + f"{HEADER}\n{GOOD}\n".encode("utf-16-le"))
    assert "UTF-16" in _fails(path).message


def test_wrong_delimiter_suggests_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n".replace(",", ";"))
    error = _fails(path)
    assert "no column 'visit_id'" in error.message
    assert "delimiter: ';'" in error.hint


def test_wrong_delimiter_with_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "tabs.csv"
    path.write_text("a\tb\n1\t2\n")
    mapping = parse_mapping({"columns": {"visit_id": "a"}}, "m.yaml")
    error = _fails(path, mapping)
    assert "reads column 'a'" in error.message
    assert "m.yaml" in error.message
    assert "delimiter: '\\\\t'" in error.hint


def test_ragged_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{GOOD}\nV9,P-0009,2025-03-01\n{GOOD}\n")
    error = _fails(path)
    assert error.details["line"] == 4
    assert f"{path}, line 4: this row has 3 values but the header has 9 columns" in error.message


def test_too_many_values_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text(f"{HEADER}\n{GOOD},oops\n")
    assert "line 2: this row has 10 values" in _fails(path).message


def test_header_names_that_differ_only_in_case_collide(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("ID,id\n1,2\n")
    assert "line 1: duplicate header name(s) ID, id" in _fails(path).message


def test_header_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(HEADER + "\n")
    error = _fails(path)
    assert "line 2" in error.message
    assert "no data rows" in error.message


def test_gbk_read_as_utf8_suggests_gbk(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    body = "\n".join([HEADER, GOOD, GOOD.replace("V1", "V2"), GOOD.replace("X", "北京")])
    path.write_bytes(body.encode("gbk") + b"\n")
    error = _fails(path)
    assert "not valid UTF-8" in error.message
    assert "line 4" in error.message
    assert "encoding: gbk" in error.hint


def test_gbk_header_read_as_utf8_suggests_gbk(tmp_path: Path) -> None:
    path = tmp_path / "gbk-header.csv"
    path.write_bytes("编号,金额\n1,2\n".encode("gbk"))
    error = _fails(path)
    assert "line 1: the file is not valid UTF-8" in error.message
    assert "encoding: gbk" in error.hint


def test_invalid_gbk_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b"a,b\n1,2\n3,\x81\x20\n")
    mapping = parse_mapping({"source": {"encoding": "gbk"}}, "m.yaml")
    error = _fails(path, mapping)
    assert "line 3: the file is not valid GBK" in error.message


def test_mapping_to_a_missing_column_names_it_and_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n")
    mapping = parse_mapping({"columns": {"cost": {"from": "fee"}}}, "riverside.yaml")
    error = _fails(path, mapping)
    assert error.message == (
        f"riverside.yaml: columns.cost reads column 'fee', which {path} does not have; "
        f"its columns are: {HEADER.replace(',', ', ')}"
    )
    assert error.details["column"] == "fee"


def test_mapping_onto_a_column_the_standard_lacks(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n")
    mapping = parse_mapping({"columns": {"price": "cost"}}, "m.yaml")
    with pytest.raises(InvalidInput, match=r"health\.visit has no column 'price'"):
        validate(path, get("health.visit"), mapping)


def test_missing_file_and_size_limit(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no file at"):
        validate(tmp_path / "absent.csv", get("health.visit"))
    path = tmp_path / "v.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n")
    with pytest.raises(LimitExceeded) as caught:
        validate(path, get("health.visit"), max_bytes=10)
    assert caught.value.setting == "max_upload_bytes"


@pytest.mark.slow
def test_a_200_mb_file_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    line = GOOD.replace("V1,", "V{},").encode()
    rows = 0
    with path.open("wb") as out:
        out.write(HEADER.encode() + b"\n")
        while out.tell() < 200 * 1024 * 1024:
            block = b"".join(
                line.replace(b"{}", str(rows + i).encode()) + b"\n" for i in range(100_000)
            )
            out.write(block)
            rows += 100_000
    with validate(path, get("health.visit"), memory_limit="1GB") as run:
        assert run.report.rows_total == rows
        assert run.report.valid
