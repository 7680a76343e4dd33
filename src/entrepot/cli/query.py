"""`entrepot query`: ask a differentially private question in SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from entrepot.cli._common import As, Home, Json, console, emit, open_node
from entrepot.errors import InvalidInput
from entrepot.exchange.accounts import Accounts
from entrepot.exchange.query import Queries, QueryResult


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"


def _render(result: QueryResult) -> None:
    answer = result.answer
    out = Table(
        title=f"{result.dataset} v{result.version}",
        title_justify="left",
        header_style="bold",
        caption=f"95% intervals · {answer.mechanism} noise",
        caption_justify="left",
    )
    for key in answer.keys:
        out.add_column(key)
    for name in answer.aggregates:
        out.add_column(name, justify="right")
        out.add_column("95% interval", justify="right", style="dim")
    for row in answer.rows:
        cells = [str(k) for k in row.key]
        for estimate in row.values:
            cells += [_fmt(estimate.value), f"[{_fmt(estimate.lo)}, {_fmt(estimate.hi)}]"]
        out.add_row(*cells)
    console.print(out)
    if answer.suppressed:
        console.print(
            f"{len(answer.suppressed)} group(s) under the threshold "
            f"({answer.threshold:g}) suppressed"
        )
    if answer.merged:
        console.print(f"{len(answer.merged)} small group(s) merged into 'other'")
    for note in answer.notes:
        console.print(f"[dim]{note}[/]")
    spent = "0 (the earlier answer, repeated)" if result.repeated else f"{result.epsilon_spent:g}"
    left = "" if result.epsilon_left is None else f" · ε left {result.epsilon_left:g}"
    console.print(f"ε spent {spent}{left} · receipt: log entry {result.receipt.index}")


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT of aggregates over one dataset.")],
    as_: As = None,
    epsilon: Annotated[
        float | None,
        typer.Option("--epsilon", "-e", help="ε to spend [default: the policy's].", min=0),
    ] = None,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="The purpose of this use [default: the grant's]."),
    ] = None,
    receipt: Annotated[
        Path | None,
        typer.Option("--receipt", help="Write the signed receipt to this file.", dir_okay=False),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Answer SQL with differential privacy: noisy values, 95% intervals, ε spent.

    Example: entrepot query --as city-health-bureau --epsilon 0.5
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits
    GROUP BY district"
    """
    if not as_:
        raise InvalidInput("say which consumer asks", hint="add --as ORG (or set ENTREPOT_AS)")
    with open_node(home) as node:
        consumer = Accounts(node.db, node.settings).actor(as_)
        result = Queries(node).run(consumer, sql, epsilon=epsilon, purpose=purpose)
    if receipt is not None:
        receipt.write_bytes(result.receipt.to_bytes())
    emit(result.to_dict(), as_json, lambda: _render(result))


def register(app: typer.Typer) -> None:
    app.command()(query)
