"""`entrepot join`: private joins across two holders' datasets.

A join query itself is asked with `entrepot query` (SQL with one JOIN on link keys);
`join overlap` asks the simplest one: how many people two datasets share, noised.
"""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import As, Home, Json, Purpose, ReceiptFile, emit, is_local, session
from entrepot.cli._steps import join_steps
from entrepot.cli.query import render_answer, write_receipt
from entrepot.errors import InvalidInput

__all__ = ["register"]

join_app = typer.Typer(
    name="join",
    help="Private joins: answers over two holders' datasets linked on blinded keys.",
    no_args_is_help=True,
)


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
    purpose: Purpose = None,
    receipt: ReceiptFile = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """How many people two datasets share, with differential privacy.

    A private join on the datasets' link keys (one pair of the same concept): neither
    holder sees the other's identifiers, and ε is spent on both grants. Both policies
    must allow the join and both grants the action private-join.

    Example: entrepot join overlap riverside-hospitals/outpatient-visits
    jade-pay/payments --as lanshan-health-bureau --epsilon 0.2
    """

    with join_steps("joining on blinded link keys…") as steps, session(home, as_) as client:
        if not as_ and is_local(client):
            raise InvalidInput("say which consumer asks", hint="add --as ORG (or set ENTREPOT_AS)")
        data = client.join_overlap(left, right, epsilon=epsilon, purpose=purpose, progress=steps)
    write_receipt(data, receipt)
    emit(data, as_json, lambda: render_answer(data))


def register(app: typer.Typer) -> None:
    app.add_typer(join_app)
