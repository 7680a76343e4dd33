"""Raw files made to confuse the reader: every row a file holds is counted, or the file
is refused with its line and a fix. The header is read as DuckDB reads it, whatever
its length, its quotes or the file's name."""

from __future__ import annotations

import bz2
import gzip
import lzma
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.errors import InvalidInput
from entrepot.standards import get, validate

HEADER = "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
GOOD = "V1,P-0001,2025-03-01,910101,1,25-34,X,120.5,1.5"


def _rows(count: int, extra: str = "") -> str:
    return "".join(f"V{i},P-0001,2025-03-01,910101,1,25-34,X,1,1.5{extra}\n" for i in range(count))


def _fails(path: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate(path, get("health.visit"))
    assert caught.value.hint
    return caught.value


def _total(path: Path) -> int:
    with validate(path, get("health.visit")) as run:
        return run.report.rows_total


def _counted(path: Path) -> int | None:
    """The rows read from ``path``, or None when it is refused."""
    try:
        return _total(path)
    except InvalidInput:
        return None


# -- quotes in the header ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ('"note', 'the header opens a quote (") that is not closed on its line'),
        (' "note', 'the header opens a quote (") that is not closed on its line'),
        ('"x"y', 'the header has text after a closing quote (")'),
        ('"x" ', 'the header has text after a closing quote (")'),
    ],
)
def test_a_header_whose_quote_runs_past_its_line_is_refused(
    tmp_path: Path, name: str, problem: str
) -> None:
    # DuckDB would read the rows up to the next quote as part of the header: they would
    # be lost without a word, and the file reported valid.
    path = tmp_path / "quoted.csv"
    path.write_text(
        f'{HEADER},{name}\n{_rows(3, ",a")}V9,P-0001,2025-03-01,910101,1,25-34,X,1,1.5,"b"\n'
    )
    error = _fails(path)
    assert error.details["line"] == 1
    assert problem in error.message


_NAME = st.text(alphabet="a\"' \t;,\\", min_size=1, max_size=8)
_VALUE = st.sampled_from(["a", '"q"', 'b"c', '"x,y"', '""', "'"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=_NAME, values=st.lists(_VALUE, min_size=1, max_size=6))
def test_every_row_is_counted_or_the_file_is_refused(
    tmp_path: Path, name: str, values: list[str]
) -> None:
    path = tmp_path / "any.csv"
    body = "".join(
        f"V{i},P-0001,2025-03-01,910101,1,25-34,X,1,1.5,{v}\n" for i, v in enumerate(values)
    )
    path.write_text(f"{HEADER},{name}\n{body}")
    assert _counted(path) in (None, len(values))


# -- long and wide headers -----------------------------------------------------------


@pytest.mark.parametrize("rows", [0, 2])
def test_a_header_longer_than_a_header_may_be_is_refused_never_cut(
    tmp_path: Path, rows: int
) -> None:
    # Cut short, a header's end would be read as a first row (a file of no rows would
    # pass), and a name cut in two could repeat another.
    path = tmp_path / "long.csv"
    path.write_text(f"{HEADER},{'x' * 100_000}\n{_rows(rows, ',a')}")
    error = _fails(path)
    assert error.details["line"] == 1
    assert "the header is longer than 65,536 bytes, the most it may have" in error.message


def test_a_header_of_thousands_of_columns_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    extra = [f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in range(500)][:12_000]
    path.write_text(f"{HEADER},{','.join(extra)}\n{GOOD}{',1' * len(extra)}\n")
    with validate(path, get("health.visit")) as run:
        assert run.report.rows_total == 1
        assert run.report.ignored_columns == tuple(extra)


def test_a_first_row_whose_first_64_kib_end_inside_a_character_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wide-char.csv"
    start = f"{HEADER},note\n".encode()
    row = f"{GOOD},".encode()
    # "é" is two bytes: the first is the last of the first 64 KiB of the row.
    filler = b"x" * (64 * 1024 - len(row) - 1)
    path.write_bytes(start + row + filler + "é".encode() + b"\n")
    assert _total(path) == 1


# -- compressed files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "compress", "kind"),
    [
        (".csv.gz", gzip.compress, "gzip"),
        (".csv", gzip.compress, "gzip"),
        (".csv.bz2", bz2.compress, "bzip2"),
        (".csv.xz", lzma.compress, "xz"),
    ],
)
def test_a_compressed_file_is_refused_by_its_bytes_never_expanded(
    tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes], kind: str
) -> None:
    path = tmp_path / f"visits{suffix}"
    path.write_bytes(compress(f"{HEADER}\n{GOOD}\n".encode()))
    error = _fails(path)
    assert f"the file is compressed ({kind})" in error.message


@pytest.mark.parametrize("suffix", [".gz", ".zst", ".csv.gz"])
def test_a_text_file_whose_name_says_compressed_is_read_as_text(
    tmp_path: Path, suffix: str
) -> None:
    # An upload keeps its name's suffix: the name must not change how the bytes are read.
    path = tmp_path / f"visits{suffix}"
    path.write_text(f"{HEADER}\n{_rows(3)}")
    assert _total(path) == 3


# -- lines of any length -------------------------------------------------------------


def test_a_line_of_many_megabytes_is_named_without_being_held_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "long-line.csv"
    size = 40 * 2**20
    with path.open("wb") as out:
        # A lone CR, then a line as long as the file: DuckDB stops at its parser's
        # state, and finding the line to name reads the file again.
        out.write(f"{HEADER}\n{GOOD}\nV2,P\r".encode())
        for _ in range(size // 2**20):
            out.write(b"x" * 2**20)
        out.write(b"\n")
    tracemalloc.start()
    try:
        error = _fails(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.details["line"] == 3
    assert "holds a lone carriage return (CR)" in error.message
    assert peak < size // 4


# -- rows that look like something else ----------------------------------------------


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_bom_a_quoted_line_break_and_a_header_repeated_mid_file(
    tmp_path: Path, ending: str
) -> None:
    # The byte-order mark is no part of the first name; a quoted value spanning lines is
    # one value (its row is named by its record); a header line repeated further down is
    # a row like any other, kept aside with its reasons.
    path = tmp_path / "odd.csv"
    lines = [
        HEADER,
        GOOD,
        f'V2,P-0002,2025-03-02,910102,2,25-34,"X{ending}Y",99,2',
        HEADER,
        "V4,P-0004,2025-03-04,910101,1,25-34,X,1,1",
    ]
    path.write_bytes(b"\xef\xbb\xbf" + ending.join(lines).encode() + ending.encode())
    with validate(path, get("health.visit")) as run:
        report = run.report
    assert (report.rows_total, report.rows_invalid) == (4, 2)
    assert [row.line for row in report.rows] == [3, 4]
    assert report.rows[0].values["diagnosis_group"] == f"X{ending}Y"
    assert report.rows[0].reasons == ("codelist:diagnosis_group",)
    assert report.rows[1].values["visit_id"] == "visit_id"
    assert "type:visit_date" in report.rows[1].reasons
