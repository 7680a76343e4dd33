"""Rich renderings of validation reports, shared by `dataset validate` and `dataset publish`.

They read the report as JSON data (the library's ``Report.to_dict()`` or a server's
answer), so a logged-in CLI renders one without loading the validator.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

__all__ = ["render_report"]

# Values wider than this are cut in tables; the JSON output keeps them whole.
_MAX_VALUE = 40


def _short(value: str | None) -> str:
    if value is None:
        return "∅"
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _summary(report: dict[str, Any]) -> Text:
    mapping = f" with mapping {report['mapping']}" if report.get("mapping") else ""
    invalid = report["rows_invalid"]
    text = Text()
    text.append(f"{report['source']}", style="bold")
    text.append(f" against {report['standard']}{mapping}: ")
    text.append(f"{report['rows_total']} rows, ")
    text.append(f"{report['rows_total'] - invalid} valid", style="green")
    text.append(", ")
    text.append(f"{invalid} invalid", style="red" if invalid else "")
    ignored = report.get("ignored_columns", [])
    if ignored:
        text.append(f"\nignored source columns: {', '.join(ignored)}", style="dim")
    return text


def _violations(report: dict[str, Any]) -> Table:
    table = Table(title="Violations", title_justify="left", header_style="bold")
    table.add_column("rule")
    table.add_column("column")
    table.add_column("rows", justify="right")
    for v in report["violations"]:
        table.add_row(v["rule"], v["column"], str(v["count"]))
    return table


def _rows(report: dict[str, Any]) -> Table:
    rows = report["rows"]
    title = f"First {len(rows)} of {report['rows_invalid']} invalid rows"
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("line", justify="right")
    table.add_column("broken rules")
    table.add_column("values of the columns involved")
    for row in rows:
        # Each listed row carries every column of the standard, in its order.
        involved = [
            c
            for c in row["values"]
            if any(c in r.split(":", 1)[1].split(",") for r in row["reasons"])
        ]
        values = ", ".join(f"{c}={_short(row['values'].get(c))}" for c in involved)
        table.add_row(str(row["line"]), "\n".join(row["reasons"]), values)
    return table


def render_report(console: Console, report: dict[str, Any]) -> None:
    """Print ``report`` (validation report data) for people: a summary, counts, first rows."""
    parts: list[Text | Table] = [_summary(report)]
    if report.get("violations"):
        parts.append(_violations(report))
    if report.get("rows"):
        parts.append(_rows(report))
    console.print(Group(*parts))
