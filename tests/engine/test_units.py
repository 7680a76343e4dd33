"""The per-unit columns a publish adds to a version's Parquet file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.engine import HIDDEN_COLUMNS, UNIT_KEY, UNIT_ROWS, is_hidden, write_unit_columns
from entrepot.engine.units import _check
from entrepot.errors import StorageCorrupt


def write(units: list[str | None], path: Path) -> Path:
    table = pa.table({"row": list(range(len(units))), "unit": pa.array(units, type=pa.string())})
    pq.write_table(table, path, row_group_size=7)
    return path


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e"])), max_size=40))
def test_each_row_gets_its_units_row_count_and_a_dense_key_by_first_row(
    tmp_path: Path, units: list[str | None]
) -> None:
    source = write(units, tmp_path / "plain.parquet")
    write_unit_columns(source, tmp_path / "units.parquet", "unit", threads=2)
    table = pq.read_table(tmp_path / "units.parquet").to_pydict()
    assert list(table) == ["row", "unit", *HIDDEN_COLUMNS]
    assert table["row"] == list(range(len(units)))  # rows keep their order
    firsts = list(dict.fromkeys(u for u in units if u is not None))
    for unit, rows, key in zip(table["unit"], table[UNIT_ROWS], table[UNIT_KEY], strict=True):
        if unit is None:
            assert (rows, key) == (None, None)
        else:
            assert rows == units.count(unit)
            assert key == firsts.index(unit) + 1


def test_the_same_file_always_gives_the_same_bytes(tmp_path: Path) -> None:
    source = write([f"u{i % 97}" for i in range(5000)], tmp_path / "plain.parquet")
    write_unit_columns(source, tmp_path / "one.parquet", "unit", threads=2)
    write_unit_columns(source, tmp_path / "two.parquet", "unit", threads=2)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_hidden_names_are_those_with_the_reserved_prefix() -> None:
    assert all(is_hidden(name) for name in HIDDEN_COLUMNS)
    assert is_hidden("__ENTREPOT_anything")
    assert not is_hidden("patient_id")
    assert not is_hidden("_entrepot_unit_rows")


def counted(path: Path, rows: list[int | None], keys: list[int | None]) -> Path:
    """Units a, a, b and a row without a unit, with the given hidden columns."""
    table = pa.table(
        {
            "unit": pa.array(["a", "a", "b", None], type=pa.string()),
            UNIT_ROWS: pa.array([*rows, None], type=pa.int32()),
            UNIT_KEY: pa.array([*keys, None], type=pa.int32()),
        }
    )
    pq.write_table(table, path)
    return path


def test_unit_columns_that_match_the_units_pass_the_check(tmp_path: Path) -> None:
    with duckdb.connect() as con:
        _check(con, counted(tmp_path / "ok.parquet", [2, 2, 1], [1, 1, 2]), "unit")


@pytest.mark.parametrize(
    ("rows", "keys"),
    [
        ([2, 1, 1], [1, 1, 2]),  # a unit's rows carry two different counts
        ([2, 2, 2], [1, 1, 2]),  # a count that is not the unit's number of rows
        ([2, 2, 1], [1, 3, 2]),  # one unit under two keys
        ([2, 2, 1], [1, 1, 1]),  # two units under one key
        ([2, 2, None], [1, 1, None]),  # a unit's row left without count or key
    ],
)
def test_unit_columns_that_disagree_with_the_units_are_refused(
    tmp_path: Path, rows: list[int | None], keys: list[int | None]
) -> None:
    with duckdb.connect() as con, pytest.raises(StorageCorrupt, match="disagree with the units"):
        _check(con, counted(tmp_path / "bad.parquet", rows, keys), "unit")
