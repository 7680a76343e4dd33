"""`entrepot provider`: the organizations that publish data on this node."""

from __future__ import annotations

from typing import Annotated

import typer

from entrepot.cli._common import Home, Json, console, emit, esc, session, table

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

    Logged in, this needs an operator account.

    Example: entrepot provider add riverside-hospitals --name "Riverside Hospitals"
    """

    with session(home) as client:
        info = client.add_provider(slug, name)
    emit(
        info,
        as_json,
        lambda: console.print(
            f"[green]added[/] provider {esc(info['slug'])} ({esc(info['name'])})", highlight=False
        ),
    )


@provider_app.command("list")
def list_(home: Home = None, as_json: Json = False) -> None:
    """List the providers of this node with their number of datasets.

    Example: entrepot provider list --json
    """

    with session(home) as client:
        providers = client.providers()
    rows = [[p["slug"], p["name"], p["datasets"], p["created_at"][:10]] for p in providers]
    emit(
        providers,
        as_json,
        lambda: console.print(
            table("Providers", ["slug", "name", "datasets", "since"], rows)
            if rows
            else "no providers yet: add one with `entrepot provider add SLUG --name NAME`"
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(provider_app, name="provider")
