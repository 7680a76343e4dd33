"""`entrepot usage`: a month's metered use, and the invoice as a table, JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer

from entrepot.cli._common import As, Home, Json, acting, console, emit, open_node, table
from entrepot.exchange.metering import Metering


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def usage(
    month: Annotated[
        str | None, typer.Option("--month", help="YYYY-MM (default: this month, UTC).")
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
    with open_node(home) as node:
        invoice = Metering(node.db, node.settings).invoice(acting(node, as_), month, party)
    if output is Format.CSV:
        typer.echo(invoice.to_csv(), nl=False)
        return
    rows = [
        [
            line.grant,
            line.consumer if invoice.role == "provider" else line.dataset,
            line.action,
            line.uses,
            f"{line.epsilon:g}",
            line.rows_scanned,
            f"{line.amount:.2f}",
        ]
        for line in invoice.lines
    ]
    rows.append(
        [
            "total",
            "",
            "",
            invoice.uses,
            f"{invoice.epsilon:g}",
            invoice.rows_scanned,
            f"{invoice.amount:.2f}",
        ]
    )
    who = "consumer" if invoice.role == "provider" else "dataset"
    head = ["grant", who, "action", "uses", "ε", "rows scanned", f"amount ({invoice.currency})"]
    emit(
        invoice.to_dict(),
        as_json or output is Format.JSON,
        lambda: console.print(table(f"Usage of {invoice.party}, {invoice.month}", head, rows)),
    )


def register(app: typer.Typer) -> None:
    app.command()(usage)
