"""`entrepot join`: private joins across two holders' datasets.

A join query itself is asked with `entrepot query` (SQL with one JOIN on link keys);
`join overlap` asks the simplest one: how many people two datasets share, noised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from entrepot.cli._common import As, Home, Json, emit, err_console, is_local, session
from entrepot.errors import InvalidInput

__all__ = ["join_steps", "register"]

join_app = typer.Typer(
    name="join",
    help="Private joins: answers over two holders' datasets linked on blinded keys.",
    no_args_is_help=True,
)

# What each step of a private join does, as the progress bar says it.
_STEPS = {
    "blind": "each holder filters and blinds its link keys",
    "reblind": "each holder blinds the other's tokens",
    "match": "matching doubly-blinded tokens",
    "aggregate": "bounding and aggregating the matched rows",
    "noise": "adding noise",
}


@contextmanager
def join_steps(label: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar over a private join's steps on stderr (a spinner until the first
    step ends; a plain query never reports one)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(step: str, done: int, total: int) -> None:
            after = list(_STEPS)[done] if done < len(_STEPS) else ""
            bar.update(
                task,
                completed=done,
                total=total,
                description=_STEPS.get(after, f"{step} done"),
            )

        yield advance


@join_app.command("overlap")
def overlap(
    left: Annotated[str, typer.Argument(help="One dataset, as provider/dataset.")],
    right: Annotated[str, typer.Argument(help="The other dataset, as provider/dataset.")],
    as_: As = None,
    epsilon: Annotated[
        float | None,
        typer.Option(
            "--epsilon", "-e", help="ε to spend on each dataset \\[default: policy's].", min=0
        ),
    ] = None,
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="The purpose of this use \\[default: the grant's]."),
    ] = None,
    receipt: Annotated[
        Path | None,
        typer.Option("--receipt", help="Write the signed receipt to this file.", dir_okay=False),
    ] = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """How many people two datasets share, with differential privacy.

    A private join on the datasets' link keys (one pair of the same concept): neither
    holder sees the other's identifiers, and ε is spent on both grants. Both policies
    must allow the join and both grants the action private-join.

    Example: entrepot join overlap skyline-mobile/phone-presence
    riverside-hospitals/outpatient-visits --as lanshan-health-bureau --epsilon 0.2
    """
    from entrepot.cli.query import render_answer, write_receipt

    with join_steps("joining on blinded link keys…") as steps, session(home, as_) as client:
        if not as_ and is_local(client):
            raise InvalidInput("say which consumer asks", hint="add --as ORG (or set ENTREPOT_AS)")
        data = client.join_overlap(left, right, epsilon=epsilon, purpose=purpose, progress=steps)
    write_receipt(data, receipt)
    emit(data, as_json, lambda: render_answer(data))


def register(app: typer.Typer) -> None:
    app.add_typer(join_app)
