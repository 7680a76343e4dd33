"""`entrepot query`: ask a differentially private question in SQL.

Logged in, the server answers (``POST /v1/queries``) as the token's consumer;
logged out, the local node answers for ``--as ORG``. Both print the API's body.
SQL that joins two datasets on link keys is a private join, in the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

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


def _answer_table(
    title: str,
    caption: str,
    columns: list[tuple[str, str]],
    rows: list[list[Text]],
    width: int,
) -> Table | None:
    """The answer as a table of ``columns`` (header, what it holds: a key, a figure, an
    interval, or the near-zero mark) within ``width``, or None if it cannot fit.

    Nothing is cut short: a column is at least as wide as its longest word (a figure, a
    bound: an interval wraps at its space); what the terminal has beyond goes to the
    columns in proportion to what wrapping took from them. (Rich would shrink columns
    past their longest word, and cut the figures short.)
    """
    least, natural = [], []
    for index, (header, _) in enumerate(columns):
        texts = [header, *(r[index].plain for r in rows)]
        least.append(max((cell_len(w) for t in texts for w in t.split()), default=0))
        natural.append(max(cell_len(line) for t in texts for line in t.splitlines() or [""]))
    # each column adds its padding and a border; the table its last border
    spare = width - 1 - sum(w + 3 for w in least)
    if spare < 0:
        return None
    wanted = sum(natural) - sum(least)
    widths = [
        n if spare >= wanted else w + spare * (n - w) // wanted
        for w, n in zip(least, natural, strict=True)
    ]
    out = Table(
        title=cell(title),
        title_justify="left",
        header_style="bold",
        caption=cell(caption),
        caption_justify="left",
    )
    for (header, kind), fixed in zip(columns, widths, strict=True):
        out.add_column(
            cell(header),
            justify="right" if kind in ("figure", "interval") else "left",
            style="dim" if kind == "interval" else "",
            width=fixed,
        )
    for cells in rows:
        out.add_row(*cells)
    return out


def _stacked(
    columns: list[tuple[str, str]], rows: list[list[Text]]
) -> tuple[list[tuple[str, str]], list[list[Text]]]:
    """The same columns with each interval under its figure, in one column: half as
    many columns, for a terminal too narrow for one each."""
    kept = [i for i, (_, kind) in enumerate(columns) if kind != "interval"]
    stacked = []
    for cells in rows:
        merged = []
        for i in kept:
            if i + 1 < len(columns) and columns[i + 1][1] == "interval":
                merged.append(Text.assemble(cells[i], "\n", (cells[i + 1].plain, "dim")))
            else:
                merged.append(cells[i])
        stacked.append(merged)
    return [columns[i] for i in kept], stacked


def render_answer(result: dict[str, Any], *, most: int | None = None) -> None:
    """Print a private answer (the API's body) as a table with its notes; ``most`` rows
    at most, the rest counted."""
    answer = result["answer"]
    read = result.get("datasets") or [result]
    title = " ⋈ ".join(f"{d['dataset']} v{d['version']}" for d in read)
    caption = f"95% intervals · {answer['mechanism']} noise"
    # the aggregates whose removed part some row puts back
    put = {
        index
        for row in answer["rows"]
        for index, figures in enumerate(row.get("asked") or ())
        if figures is not None
    }
    near = [row for row in answer["rows"] if row.get("near_zero")]
    shown = answer["rows"] if most is None else answer["rows"][:most]
    columns = [(key, "key") for key in answer["keys"]]
    for index, name in enumerate(answer["aggregates"]):
        columns += [(name, "figure"), ("95% interval", "interval")]
        if index in put:
            columns += [(f"{name}, removed put back", "figure"), ("95% interval", "interval")]
    if near:
        columns.append(("", "mark"))
    rows: list[list[Text]] = []
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
        rows.append(cells)
    # one column per interval where the terminal has room, else each under its figure
    # (and cut at the terminal's edge only where even that cannot fit)
    stacked = _stacked(columns, rows)
    out = (
        _answer_table(title, caption, columns, rows, console.width)
        or _answer_table(title, caption, *stacked, console.width)
        or _answer_table(title, caption, *stacked, 10**6)
    )
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
