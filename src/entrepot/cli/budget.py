"""`entrepot budget`: ε granted, spent and left per dataset; providers set dataset caps."""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import As, Home, Json, acting, console, emit, open_node, table
from entrepot.exchange.budgets import Budgets

budget_app = typer.Typer(invoke_without_command=True)


@budget_app.callback()
def show(
    ctx: typer.Context,
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
    with open_node(home) as node:
        views = Budgets(node.db).visible(acting(node, as_))
    rows = [
        [
            v.dataset,
            v.consumer,
            v.grant,
            f"{v.epsilon_granted:g}",
            f"{v.epsilon_spent:g}",
            f"{v.epsilon_left:g}",
            f"{v.queries_used}/{v.max_queries}" if v.max_queries else v.queries_used,
            v.valid_until,
            "" if v.cap is None else f"{v.cap.epsilon_left:g} of {v.cap.epsilon_cap:g}",
        ]
        for v in views
    ]
    head = ["dataset", "consumer", "grant", "ε granted", "ε spent", "ε left", "uses", "until"]
    emit(
        [v.to_dict() for v in views],
        as_json,
        lambda: console.print(
            table("Budgets", [*head, "dataset cap left"], rows)
            if rows
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

    Example: entrepot budget set-cap riverside-hospitals/outpatient-visits --epsilon 10
    --as riverside-hospitals
    """
    with open_node(home) as node:
        cap = Budgets(node.db).set_cap(acting(node, as_), dataset, epsilon)
    emit(
        cap.to_dict(),
        as_json,
        lambda: console.print(
            f"[green]cap set[/] {cap.dataset}: {cap.epsilon_cap:g} ε, "
            f"{cap.epsilon_spent:g} spent, {cap.epsilon_left:g} left"
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(budget_app, name="budget")
