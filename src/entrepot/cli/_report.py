"""Rich renderings of validation reports, shared by `dataset validate` and `dataset publish`."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from entrepot.standards import Report

__all__ = ["render_report"]

# Values wider than this are cut in tables; the JSON output keeps them whole.
_MAX_VALUE = 40


def _short(value: str | None) -> str:
    if value is None:
        return "∅"
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _summary(report: Report) -> Text:
    mapping = f" with mapping {report.mapping}" if report.mapping else ""
    text = Text()
    text.append(f"{report.source}", style="bold")
    text.append(f" against {report.standard}{mapping}: ")
    text.append(f"{report.rows_total} rows, ")
    text.append(f"{report.rows_valid} valid", style="green")
    text.append(", ")
    text.append(f"{report.rows_invalid} invalid", style="red" if report.rows_invalid else "")
    if report.ignored_columns:
        text.append(f"\nignored source columns: {', '.join(report.ignored_columns)}", style="dim")
    return text


def _violations(report: Report) -> Table:
    table = Table(title="Violations", title_justify="left", header_style="bold")
    table.add_column("rule")
    table.add_column("column")
    table.add_column("rows", justify="right")
    for v in report.violations:
        table.add_row(v.rule, v.column, str(v.count))
    return table


def _rows(report: Report) -> Table:
    shown = len(report.rows)
    title = f"First {shown} of {report.rows_invalid} invalid rows"
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("line", justify="right")
    table.add_column("broken rules")
    table.add_column("values of the columns involved")
    for row in report.rows:
        involved = [
            c
            for c in report.columns
            if any(c in r.split(":", 1)[1].split(",") for r in row.reasons)
        ]
        values = ", ".join(f"{c}={_short(row.values.get(c))}" for c in involved)
        table.add_row(str(row.line), "\n".join(row.reasons), values)
    return table


def render_report(console: Console, report: Report) -> None:
    """Print ``report`` for people: a summary, counts per rule and column, first rows."""
    parts: list[Text | Table] = [_summary(report)]
    if report.violations:
        parts.append(_violations(report))
    if report.rows:
        parts.append(_rows(report))
    console.print(Group(*parts))
