"""`entrepot usage`: a month's metered use, and the invoice as a table, JSON or CSV.

It runs against the logged-in server (``GET /v1/usage``) or, logged out, on the
local node; JSON and CSV are the API's bodies in both places.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from entrepot.cli._common import As, Home, Json, console, emit, session, table


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _rows(count: int | None) -> str:
    return "—" if count is None else str(count)


def _render(invoice: dict[str, Any]) -> None:
    by_consumer = invoice["role"] == "provider"
    rows = [
        [
            line["grant"],
            line["consumer"] if by_consumer else line["dataset"],
            line["action"],
            line["uses"],
            f"{line['epsilon']:g}",
            _rows(line["rows_scanned"]),
            line["amount"],
        ]
        for line in invoice["lines"]
    ]
    total = invoice["total"]
    totals = [total["uses"], f"{total['epsilon']:g}", _rows(total["rows_scanned"]), total["amount"]]
    rows.append(["total", "", "", *totals])
    who = "consumer" if by_consumer else "dataset"
    head = ["grant", who, "action", "uses", "ε", "rows scanned", f"amount ({invoice['currency']})"]
    console.print(table(f"Usage of {invoice['party']}, {invoice['month']}", head, rows))


def usage(
    month: Annotated[
        str | None, typer.Option("--month", help="YYYY-MM \\[default: this month, UTC].")
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.TABLE,
    party: Annotated[
        str | None,
        typer.Option("--party", help="Another organization's usage (operators only)."),
    ] = None,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """A month's metered use (ε, rows scanned, price) and the invoice.

    A consumer sees what it owes; a provider what its datasets earned. Figures are
    sums of ledger rows.

    Example: entrepot usage --as city-health-bureau --month 2026-11 --format csv
    """
    month = month or datetime.now(UTC).strftime("%Y-%m")
    csv = output is Format.CSV

    with session(home, as_) as client:
        if csv:
            typer.echo(client.usage_csv(month, party), nl=False)
            return
        data = client.usage(month, party)
    emit(data, as_json or output is Format.JSON, lambda: _render(data))


def register(app: typer.Typer) -> None:
    app.command()(usage)
