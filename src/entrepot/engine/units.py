"""Per-unit columns a published version carries next to its standard's columns.

Bounding a privacy unit's contribution weights each of its rows by ``min(1, R / n)``,
where ``n`` is the unit's number of rows. Counting them at query time is a hash
aggregate over millions of unit identifiers, joined back to the rows: at 10M rows
that is about 90% of a bounded query (benchmarks/RESULTS.md). ``n`` depends on the
data only, so a publish counts it once and stores it in the version's own file::

    __entrepot_unit_rows   the unit's number of rows in the version (NULL: no unit)
    __entrepot_unit_key    a dense integer standing for the unit (1, 2, ... by first row)

A query without a filter then weights each row with no aggregate over units; one
with a filter keeps apart, by the integer key, only the rows of units whose count is
above the bound, and needs no per-unit grouping for the others. The publish also
returns how many units have each count, from which :mod:`entrepot.privacy.bounds`
estimates the bound privately.

These columns are hidden: their names start with :data:`HIDDEN_PREFIX`, which no
standard's column may, so the SQL checker (which accepts only the standard's
columns) refuses any query naming them, and only the rewrite reads them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb

from entrepot.engine._sql import ident, literal
from entrepot.errors import StorageCorrupt

__all__ = [
    "HIDDEN_COLUMNS",
    "HIDDEN_PREFIX",
    "UNIT_KEY",
    "UNIT_ROWS",
    "is_hidden",
    "write_unit_columns",
]

HIDDEN_PREFIX = "__entrepot_"
UNIT_ROWS = HIDDEN_PREFIX + "unit_rows"
UNIT_KEY = HIDDEN_PREFIX + "unit_key"
HIDDEN_COLUMNS = (UNIT_ROWS, UNIT_KEY)


def is_hidden(name: str) -> bool:
    """Whether ``name`` is reserved for the columns a publish adds."""
    return name.lower().startswith(HIDDEN_PREFIX)


def write_unit_columns(
    source: Path,
    target: Path,
    unit: str,
    *,
    threads: int = 2,
    memory_limit: str = "2GB",
    workdir: Path | None = None,
) -> dict[int, int]:
    """Copy the Parquet file ``source`` to ``target`` with the hidden unit columns added;
    return how many units have each number of rows (``{rows: units}``).

    Rows keep their order and the key numbers units by their first row, so the same
    input always gives the same bytes; compression is zstd, as the validation writes.
    DuckDB spills to a private temporary folder beyond ``memory_limit``: ``workdir``,
    an empty one the caller made, else a new one in the system's temporary folder;
    it is deleted at the end.
    """
    workdir = workdir or Path(tempfile.mkdtemp(prefix="entrepot-units-"))
    u = ident(unit)
    read = f"read_parquet({literal(str(source))}"
    # Only the unit and the row number go through the join and the sort back into row
    # order; a positional join then lays the two new columns beside the rows as the
    # file holds them. Sorting whole rows instead costs 1.5 times the CPU at 10M rows
    # and spills over 13 GB at 100M.
    sql = f"""COPY (
        WITH __rows AS (SELECT {u} AS __u, file_row_number AS __r
                        FROM {read}, file_row_number = true)),
        __units AS (
            SELECT __u, CAST(count(*) AS INTEGER) AS __n,
                   CAST(row_number() OVER (ORDER BY min(__r)) AS INTEGER) AS __k
            FROM __rows WHERE __u IS NOT NULL GROUP BY 1),
        __counts AS (
            SELECT __units.__n AS {ident(UNIT_ROWS)}, __units.__k AS {ident(UNIT_KEY)}
            FROM __rows LEFT JOIN __units USING (__u) ORDER BY __rows.__r)
        SELECT * FROM {read}) POSITIONAL JOIN __counts
    ) TO {literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"""
    config: dict[str, str | bool | int | float | list[str]] = {
        "threads": threads,
        "memory_limit": memory_limit,
        "temp_directory": str(workdir / "spill"),
        "preserve_insertion_order": True,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    try:
        with duckdb.connect(":memory:", config=config) as con:
            # The caller draws its own progress; DuckDB's bar would write over it.
            con.execute("SET enable_progress_bar = false")
            con.execute(sql)
            _check(con, target, unit)
            return _histogram(con, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check(con: duckdb.DuckDBPyConnection, target: Path, unit: str) -> None:
    """Prove, on the written file, that every row carries its own unit's count and key.

    Queries trust these columns to bound each unit's contribution, so a file where
    they disagree with the units (rows misaligned by the positional join) is refused
    rather than published.
    """
    u, rows, key = ident(unit), ident(UNIT_ROWS), ident(UNIT_KEY)
    read = f"read_parquet({literal(str(target))})"
    wrong_units, wrong_keys = con.execute(
        f"""SELECT
            (SELECT count(*) FROM (
                SELECT {u} IS NULL AS orphan, count(*) AS n, min({rows}) AS lo,
                       max({rows}) AS hi, count({rows}) AS counted,
                       count(DISTINCT {key}) AS keys, count({key}) AS keyed
                FROM {read} GROUP BY {u})
             WHERE CASE WHEN orphan THEN counted > 0 OR keyed > 0
                        ELSE lo <> n OR hi <> n OR counted <> n OR keys <> 1 OR keyed <> n END),
            (SELECT count(*) FROM (
                SELECT count(DISTINCT {u}) AS units FROM {read}
                WHERE {key} IS NOT NULL GROUP BY {key})
             WHERE units <> 1)"""
    ).fetchone() or (0, 0)
    if wrong_units or wrong_keys:
        raise StorageCorrupt(
            f"the per-unit columns written to {target.name} disagree with the units "
            f"({wrong_units} units with a wrong count or key, {wrong_keys} keys shared)",
            hint="publish again; if it recurs, report it with the DuckDB version",
        )


def _histogram(con: duckdb.DuckDBPyConnection, target: Path) -> dict[int, int]:
    """``{n: units with n rows}`` from the written file: its n rows each carry n."""
    rows = ident(UNIT_ROWS)
    found = con.execute(
        f"SELECT {rows}, count(*) // {rows} FROM read_parquet({literal(str(target))}) "
        f"WHERE {rows} IS NOT NULL GROUP BY 1"
    ).fetchall()
    return {int(n): int(units) for n, units in found}
