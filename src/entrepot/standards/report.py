"""The validation report: complete counts per (rule, column) and the first offending rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RULES", "OffendingRow", "Report", "Violation"]

# Every rule the validator knows, in the order reports list them.
RULES = (
    "required",
    "type",
    "minimum",
    "maximum",
    "enum",
    "codelist",
    "pattern",
    "unique",
    "primary_key",
    "foreign_key",
)


@dataclass(frozen=True)
class Violation:
    """``count`` rows broke ``rule`` on ``column`` (several columns joined by commas)."""

    rule: str
    column: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "column": self.column, "count": self.count}


@dataclass(frozen=True)
class OffendingRow:
    """A row that broke at least one rule: its source line, reasons and mapped text values."""

    line: int
    reasons: tuple[str, ...]
    values: dict[str, str | None]

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reasons": list(self.reasons), "values": dict(self.values)}


@dataclass(frozen=True)
class Report:
    """What validating one file against one standard found.

    ``rows_valid + rows_invalid == rows_total`` always; ``violations`` counts every
    violation (a row breaking two rules counts once for each); ``rows`` lists only the
    first ``report_rows`` offending rows, in file order.
    """

    source: str
    standard: str
    mapping: str | None
    rows_total: int
    rows_invalid: int
    violations: tuple[Violation, ...] = ()
    rows: tuple[OffendingRow, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] = field(default=(), repr=False)

    @property
    def rows_valid(self) -> int:
        return self.rows_total - self.rows_invalid

    @property
    def valid(self) -> bool:
        return self.rows_invalid == 0

    def count(self, rule: str, column: str) -> int:
        """Violations of ``rule`` on ``column`` (0 when none)."""
        return sum(v.count for v in self.violations if (v.rule, v.column) == (rule, column))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict` data (e.g. one stored with a version)."""
        rows = tuple(
            OffendingRow(int(r["line"]), tuple(r["reasons"]), dict(r["values"]))
            for r in data.get("rows", [])
        )
        return cls(
            source=data["source"],
            standard=data["standard"],
            mapping=data.get("mapping"),
            rows_total=int(data["rows_total"]),
            rows_invalid=int(data["rows_invalid"]),
            violations=tuple(
                Violation(v["rule"], v["column"], int(v["count"]))
                for v in data.get("violations", [])
            ),
            rows=rows,
            ignored_columns=tuple(data.get("ignored_columns", [])),
            # Every listed row carries every column, in the standard's order.
            columns=tuple(rows[0].values) if rows else (),
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the shape ``--json`` prints)."""
        return {
            "source": self.source,
            "standard": self.standard,
            "mapping": self.mapping,
            "valid": self.valid,
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "rows_invalid": self.rows_invalid,
            "violations": [v.to_dict() for v in self.violations],
            "rows": [r.to_dict() for r in self.rows],
            "ignored_columns": list(self.ignored_columns),
        }
