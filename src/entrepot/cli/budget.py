"""`entrepot budget`: ε granted, spent and left per dataset; providers set dataset caps.

Both commands run against the logged-in server or, logged out, on the local node,
and print the API's bodies (``/v1/budgets``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from entrepot.cli._common import As, Home, Json, console, emit, esc, session, table

budget_app = typer.Typer(invoke_without_command=True)


def _row(budget: dict[str, Any]) -> list[Any]:
    cap = budget["cap"]
    uses = budget["queries_used"]
    return [
        budget["dataset"],
        budget["consumer"],
        budget["grant"],
        f"{budget['epsilon_granted']:g}",
        f"{budget['epsilon_spent']:g}",
        f"{budget['epsilon_left']:g}",
        f"{uses}/{budget['max_queries']}" if budget["max_queries"] else uses,
        budget["valid_until"],
        "" if cap is None else f"{cap['epsilon_left']:g} of {cap['epsilon_cap']:g}",
        "" if cap is None else f"{cap['delta_left']:.3g} of {cap['delta_cap']:.3g}",
    ]


@budget_app.callback()
def show(
    ctx: typer.Context,
    closed: Annotated[
        bool, typer.Option("--closed", help="Include revoked and expired budgets.")
    ] = False,
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """ε granted, spent and left per dataset, with each dataset's global cap.

    A consumer sees its own budgets; a provider those on its datasets.

    Example: entrepot budget --as city-health-bureau --json
    """
    if ctx.invoked_subcommand is not None:
        return

    with session(home, as_) as client:
        data = client.budgets(closed=closed)
    head = ["dataset", "consumer", "grant", "ε granted", "ε spent", "ε left", "uses", "until"]
    emit(
        data,
        as_json,
        lambda: console.print(
            table("Budgets", [*head, "dataset cap left", "dataset δ left"], [_row(b) for b in data])
            if data
            else "no open budgets: request access with `entrepot access request`"
        ),
    )


@budget_app.command("set-cap")
def set_cap(
    dataset: Annotated[str, typer.Argument(help="provider/dataset.")],
    epsilon: Annotated[
        float, typer.Option("--epsilon", help="Total ε all consumers together may spend.")
    ],
    as_: As = None,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Set a dataset's global ε cap, across every consumer (never below what was spent).

    Only the dataset's provider sets it (logged in: a provider account).

    Example: entrepot budget set-cap riverside-hospitals/outpatient-visits --epsilon 10
    --as riverside-hospitals
    """

    with session(home, as_) as client:
        cap = client.set_cap(dataset, epsilon)
    emit(
        cap,
        as_json,
        lambda: console.print(
            f"[green]cap set[/] {esc(cap['dataset'])}: {cap['epsilon_cap']:g} ε, "
            f"{cap['epsilon_spent']:g} spent, {cap['epsilon_left']:g} left"
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")
