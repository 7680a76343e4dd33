"""The `entrepot` command: a Typer app assembled from one module per noun."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from entrepot import __version__
from entrepot.cli._common import fail
from entrepot.errors import EntrepotError, ExitCode

# Each module exposes ``register(app)``; the order is the order of `entrepot --help`.
_NOUNS = (
    "node",
    "serve",
    "db",
    "login",
    "standard",
    "provider",
    "dataset",
    "catalog",
    "account",
    "access",
    "policy",
    "query",
    "budget",
    "usage",
    "audit",
    "receipt",
    "opening",
    "demo",
)

app = typer.Typer(
    name="entrepot",
    help="A privacy-preserving data exchange: trade the insight, not the data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """A privacy-preserving data exchange: trade the insight, not the data."""
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


for _noun in _NOUNS:
    importlib.import_module(f"entrepot.cli.{_noun}").register(app)


def main() -> None:
    """Run the CLI; any EntrepotError becomes one friendly message, never a traceback."""
    try:
        app(prog_name="entrepot", standalone_mode=True)
    except EntrepotError as error:
        fail(error, as_json="--json" in sys.argv)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
    except Exception as error:
        if os.environ.get("ENTREPOT_DEBUG"):
            raise
        fail(
            EntrepotError(
                f"internal error ({type(error).__name__}: {error})",
                hint="this is a bug in entrepot; rerun with ENTREPOT_DEBUG=1 for the traceback "
                "and report it",
            ),
            as_json="--json" in sys.argv,
        )
