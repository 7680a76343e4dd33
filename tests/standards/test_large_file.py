"""A file large enough for DuckDB to read in parallel keeps its line numbers and order."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from entrepot.standards import codelist, get, validate

STANDARD = get("health.visit")
# About 60 MB: DuckDB splits a file this size between its threads.
ROWS = 600_000
DISTRICT = codelist("region.district").codes[0]


def _row(i: int) -> str:
    return f"V{i},P{i % 9973:05d},2025-03-01,{DISTRICT},1,25-34,II,{i % 997}.5,{i % 24}"


@pytest.mark.slow
def test_lines_and_order_survive_a_parallel_read(tmp_path: Path) -> None:
    bad_cost = set(range(1_000, ROWS, 40_009))
    repeated = set(range(7_777, ROWS, 50_021))
    lines = [",".join(STANDARD.field_names)]
    for i in range(ROWS):
        row = _row(i - 1 if i in repeated else i)
        if i in bad_cost:
            row = row.rsplit(",", 2)[0] + ",abc," + row.rsplit(",", 1)[1]
        lines.append(row)
    path = tmp_path / "visits.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with validate(path, STANDARD, report_rows=100, threads=2) as run:
        report = run.report
        run.write_valid(tmp_path / "valid.parquet")
        run.write_rejected(tmp_path / "rejected.parquet")

    # a data row's line is its index + 2 (the header is line 1)
    expected = {i + 2: "type:cost" for i in bad_cost} | {
        i + 2: "primary_key:visit_id" for i in repeated
    }
    assert {row.line: row.reasons for row in report.rows} == {
        line: (reason,) for line, reason in expected.items()
    }
    rejected = pq.read_table(tmp_path / "rejected.parquet").to_pylist()
    assert [r["line"] for r in rejected] == sorted(expected)
    # each rejected row's texts are its own: a repeated key names the row before it
    assert [r["visit_id"] for r in rejected] == [
        f"V{i - 1}" if i in repeated else f"V{i}" for i in sorted(bad_cost | repeated)
    ]
    valid = pq.read_table(tmp_path / "valid.parquet", columns=["visit_id"]).column(0)
    kept = [i for i in range(ROWS) if i not in bad_cost and i not in repeated]
    assert valid.to_pylist() == [f"V{i}" for i in kept]
