"""Rich renderings of validation reports, shared by `dataset validate` and `dataset publish`.

They read the report as JSON data (the library's ``Report.to_dict()`` or a server's
answer), so a logged-in CLI renders one without loading the validator. Every part
is plain :class:`~rich.text.Text`, never markup: names and values come from the
file, and a ``[/]`` or an escape sequence in a cell must print as written.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from entrepot._text import printable

__all__ = ["render_report"]

# Values wider than this are cut in tables; the JSON output keeps them whole.
_MAX_VALUE = 40


def _short(value: str | None) -> str:
    if value is None:
        return "∅"
    value = printable(value)
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _plain(value: object) -> Text:
    return Text("" if value is None else printable(str(value)))


def _summary(report: dict[str, Any]) -> Text:
    mapping = f" with mapping {report['mapping']}" if report.get("mapping") else ""
    invalid = report["rows_invalid"]
    text = Text()
    text.append(printable(f"{report['source']}"), style="bold")
    text.append(printable(f" against {report['standard']}{mapping}: "))
    text.append(f"{report['rows_total']} rows, ")
    text.append(f"{report['rows_total'] - invalid} valid", style="green")
    text.append(", ")
    text.append(f"{invalid} invalid", style="red" if invalid else "")
    ignored = report.get("ignored_columns", [])
    if ignored:
        text.append("\nignored source columns: " + printable(", ".join(ignored)), style="dim")
    return text


def _violations(report: dict[str, Any]) -> Table:
    table = Table(title="Violations", title_justify="left", header_style="bold")
    table.add_column("rule")
    table.add_column("column")
    table.add_column("rows", justify="right")
    for v in report["violations"]:
        table.add_row(_plain(v["rule"]), _plain(v["column"]), _plain(v["count"]))
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
        values = ", ".join(f"{printable(c)}={_short(row['values'].get(c))}" for c in involved)
        table.add_row(
            _plain(row["line"]),
            Text("\n".join(printable(r) for r in row["reasons"])),
            Text(values),
        )
    return table


def render_report(console: Console, report: dict[str, Any]) -> None:
    """Print ``report`` (validation report data) for people: a summary, counts, first rows."""
    parts: list[Text | Table] = [_summary(report)]
    if report.get("violations"):
        parts.append(_violations(report))
    if report.get("rows"):
        parts.append(_rows(report))
    console.print(Group(*parts))
