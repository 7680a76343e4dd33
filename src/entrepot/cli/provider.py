"""`entrepot provider`: the organizations that publish data on this node."""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import Home, Json, console, emit, open_node, table
from entrepot.vault import add_provider, list_providers

provider_app = typer.Typer(
    help="Register and list data providers (hospitals, operators, agencies).",
    no_args_is_help=True,
)


@provider_app.command("add")
def add(
    slug: Annotated[str, typer.Argument(help="Short name used in dataset references.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The organization's full name.")],
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Register a provider; its datasets are then named <slug>/<dataset>.

    Example: entrepot provider add riverside-hospitals --name "Riverside Hospitals"
    """
    with open_node(home) as node:
        info = add_provider(node.db, slug, name)
    emit(
        info.to_dict(),
        as_json,
        lambda: console.print(f"[green]added[/] provider {info.slug} ({info.name})"),
    )


@provider_app.command("list")
def list_(home: Home = None, as_json: Json = False) -> None:
    """List the providers of this node with their number of datasets.

    Example: entrepot provider list --json
    """
    with open_node(home) as node:
        providers = list_providers(node.db)
    rows = [[p.slug, p.name, p.datasets, p.created_at.date().isoformat()] for p in providers]
    emit(
        [p.to_dict() for p in providers],
        as_json,
        lambda: console.print(
            table("Providers", ["slug", "name", "datasets", "since"], rows)
            if rows
            else "no providers yet: add one with `entrepot provider add SLUG --name NAME`"
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(provider_app, name="provider")
