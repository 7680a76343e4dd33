"""Quality figures of a version: what a provider learns about its own data.

Only aggregates over whole columns (completeness) and counts from the validation
(rows and violations per rule and column) — never a value of an individual row. They
are still exact figures of the content (a completeness of 0.9991 over 2,285 rows says
exactly two values are missing), so the catalog shows them to the dataset's provider
and the node's operators only (:func:`entrepot.exchange.catalog.sees_content`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["completeness", "quality_figures", "validation_summary"]

# Completeness is shown to the provider as a share; four decimals tell 99.99 % from 100 %.
_DIGITS = 4


def completeness(path: Path) -> dict[str, float]:
    """Share of non-null values per column of the Parquet file at ``path``."""
    parquet = pq.ParquetFile(path)
    metadata = parquet.metadata
    rows = metadata.num_rows
    names = parquet.schema_arrow.names
    nulls = dict.fromkeys(names, 0)
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index, name in enumerate(names):
            stats = row_group.column(index).statistics
            if stats is not None and stats.has_null_count:
                nulls[name] += stats.null_count
            else:
                column = parquet.read_row_group(group, columns=[name]).column(0)
                nulls[name] += int(pc.sum(pc.is_null(column)).as_py() or 0)
    if rows == 0:
        return dict.fromkeys(names, 0.0)
    return {name: round(1 - nulls[name] / rows, _DIGITS) for name in names}


def validation_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The counts of a validation report, without its offending rows or their values."""
    violations = [
        {
            "rule": str(item.get("rule", "")),
            "column": item.get("column"),
            "count": int(item.get("count", 0)),
        }
        for item in report.get("violations", [])
        if isinstance(item, dict)
    ]
    return {
        "rows_total": int(report.get("rows_total", 0)),
        "rows_valid": int(report.get("rows_valid", 0)),
        "rows_invalid": int(report.get("rows_invalid", 0)),
        "violations": violations,
    }


def quality_figures(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """Completeness per column of the published file and the validation summary."""
    return {"completeness": completeness(path), "validation": validation_summary(report)}
