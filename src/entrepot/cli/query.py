"""`entrepot query`: ask a differentially private question in SQL.

Logged in, the server answers (``POST /v1/queries``) as the token's consumer;
logged out, the local node answers for ``--as ORG``. Both print the API's body.
SQL that joins two datasets on link keys is a private join, in the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from entrepot.cli._common import (
    As,
    Home,
    Json,
    Purpose,
    ReceiptFile,
    cell,
    console,
    emit,
    esc,
    is_local,
    session,
)
from entrepot.cli._steps import join_steps
from entrepot.errors import InvalidInput


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"


def render_answer(result: dict[str, Any], *, most: int | None = None) -> None:
    """Print a private answer (the API's body) as a table with its notes; ``most`` rows
    at most, the rest counted."""
    answer = result["answer"]
    read = result.get("datasets") or [result]
    out = Table(
        title=cell(" ⋈ ".join(f"{d['dataset']} v{d['version']}" for d in read)),
        title_justify="left",
        header_style="bold",
        caption=cell(f"95% intervals · {answer['mechanism']} noise"),
        caption_justify="left",
    )
    for key in answer["keys"]:
        out.add_column(cell(key))
    # the aggregates whose removed part some row puts back
    put = {
        index
        for row in answer["rows"]
        for index, figures in enumerate(row.get("asked") or ())
        if figures is not None
    }
    for index, name in enumerate(answer["aggregates"]):
        out.add_column(cell(name), justify="right")
        out.add_column("95% interval", justify="right", style="dim")
        if index in put:
            out.add_column(cell(f"{name}, removed put back"), justify="right")
            out.add_column("95% interval", justify="right", style="dim")
    near = [row for row in answer["rows"] if row.get("near_zero")]
    if near:
        out.add_column("")
    shown = answer["rows"] if most is None else answer["rows"][:most]
    for row in shown:
        cells = [cell(k) for k in row["key"]]
        asked = row.get("asked") or [None] * len(row["values"])
        for index, (value, lo, hi) in enumerate(row["values"]):
            cells += [cell(_fmt(value)), cell(f"[{_fmt(lo)}, {_fmt(hi)}]")]
            if index in put:
                back, back_lo, back_hi = asked[index] or (None, None, None)
                span = "" if back is None else f"[{_fmt(back_lo)}, {_fmt(back_hi)}]"
                cells += [cell(_fmt(back)), cell(span)]
        if near:
            cells.append(cell("~ near zero" if row.get("near_zero") else ""))
        out.add_row(*cells)
    console.print(out)
    if len(shown) < len(answer["rows"]):
        console.print(f"{len(answer['rows']) - len(shown)} more group(s) in --json")
    if near:
        console.print(
            f"~ {len(near)} group(s) near zero: a count under "
            f"{answer.get('near_zero_threshold', 0.0):,.1f} cannot be told from an empty "
            "group (an answer's empty groups pass it with probability 1e-6 in all); an "
            "average or quantile is shown only where its count's interval excludes 0"
        )
    if answer["suppressed"]:
        console.print(
            f"{len(answer['suppressed'])} group(s) under the threshold "
            f"({answer['threshold']:g}) suppressed"
        )
    if answer["merged"]:
        console.print(f"{len(answer['merged'])} small group(s) merged into 'other'")
    for note in answer["notes"]:
        console.print(f"[dim]{esc(note)}[/]")
    if answer.get("interval_of") == "bounded data":
        removed = answer.get("removed") or {}
        shares = ", ".join(
            f"{name} {value:.1%} [{lo:.1%}, {hi:.1%}]" for name, (value, lo, hi) in removed.items()
        )
        budget = answer.get("removed_budget", 0.0)
        told = f"; bounding removed an estimated {shares}" if shares else ""
        paid = f" ({budget:.0%} of the ε)" if shares else ""
        if shares and answer.get("removed_of") == "version":
            told = f"; bounding removes an estimated {shares} of the version's rows"
            paid = " (released at publish)"
        console.print(cell(f"intervals are about the bounded data{told}{paid}"))
        if put:
            console.print(
                cell(
                    "'removed put back': each group with its part of what bounding removed "
                    "(shared out in proportion to the groups' values, or the version's share "
                    "of each, as a note says), its interval about the question asked; a high "
                    "end of — is unknown: some unit may have more rows than the removed total "
                    "counts"
                )
            )
    spent = (
        "0 (the earlier answer, repeated)" if result["repeated"] else f"{result['epsilon_spent']:g}"
    )
    left = "" if result["epsilon_left"] is None else f" · ε left {result['epsilon_left']:g}"
    index = result["receipt"]["log"]["index"]
    console.print(f"ε spent {spent}{left} · receipt: log entry {index}")


def query(
    sql: Annotated[
        str,
        typer.Argument(
            help="One SELECT of aggregates over one dataset, or two joined on link keys."
        ),
    ],
    as_: As = None,
    epsilon: Annotated[
        float | None,
        typer.Option("--epsilon", "-e", help="ε to spend \\[default: the policy's].", min=0),
    ] = None,
    purpose: Purpose = None,
    receipt: ReceiptFile = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Answer SQL with differential privacy: noisy values, 95% intervals, ε spent.

    Logged in, the token's consumer account asks; locally, --as names the consumer.
    A JOIN of two datasets on link keys is a private join: ε is spent on both, and a
    progress bar follows its steps.

    Example: entrepot query --as city-health-bureau --epsilon 0.5
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits
    GROUP BY district"
    """
    # On stderr, shown only on a terminal: the answer may take a while.
    with join_steps("answering with differential privacy…") as steps, session(home, as_) as client:
        if not as_ and is_local(client):
            raise InvalidInput("say which consumer asks", hint="add --as ORG (or set ENTREPOT_AS)")
        data = client.query(sql, epsilon=epsilon, purpose=purpose, progress=steps)
    write_receipt(data, receipt)
    emit(data, as_json, lambda: render_answer(data))


def write_receipt(data: dict[str, Any], receipt: Path | None) -> None:
    """Write an answer's signed receipt to ``receipt``, when one is named."""
    if receipt is not None:
        from entrepot.transparency.canonical import canonical_json

        receipt.write_bytes(canonical_json(data["receipt"], where="receipt"))


def register(app: typer.Typer) -> None:
    app.command()(query)
