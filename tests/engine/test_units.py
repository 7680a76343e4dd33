"""The per-unit columns a publish adds to a version's Parquet file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.engine import HIDDEN_COLUMNS, UNIT_KEY, UNIT_ROWS, is_hidden, write_unit_columns


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
