"""`entrepot share`: a Delta Sharing profile for reading releases with any client."""

from __future__ import annotations

import json

import typer

from entrepot.cli._common import As, Home, err_console, session

share_app = typer.Typer(
    help="Delta Sharing profiles: read your releases with pandas, Spark or BI tools.",
    no_args_is_help=True,
)


@share_app.command("profile")
def profile(as_: As = None, home: Home = None) -> None:
    """Print a Delta Sharing profile (JSON) with a new sharing token of your consumer account.

    A sharing token reads your released tables over Delta Sharing and nothing else: no
    query, access request, portal sign-in or new token. It is shown once: keep the file
    private; `entrepot account list --tokens` lists it, and it is revoked like any other.

    Example: entrepot share profile --as lanshan-health-bureau > bureau.share
    then: python -c "import delta_sharing as ds;
    print(ds.load_as_pandas('bureau.share#<share>.<schema>.<table>'))"
    """
    with session(home, as_) as client:
        data = client.share_profile()
    typer.echo(json.dumps(data, indent=2))
    err_console.print("tables: `entrepot release list` shows each release's share.schema.table")


def register(app: typer.Typer) -> None:
    app.add_typer(share_app, name="share")
