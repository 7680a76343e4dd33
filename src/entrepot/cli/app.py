"""The `entrepot` command: a Typer app assembled from one module per noun."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
import typer.core
import typer.main
from pydantic import ValidationError
from typer import _click as click

from entrepot import __version__
from entrepot.cli._common import bad_setting, fail
from entrepot.errors import EntrepotError, ExitCode

# Every command of `entrepot`, in the order of `entrepot --help`, with the module of
# ``entrepot.cli`` whose ``register(app)`` adds it. A module is imported only when one
# of its commands is run or described: importing all of them cost each command about
# 0.3 s of CPU before it did anything.
COMMANDS: dict[str, str] = {
    "init": "node",
    "node": "node",
    "peer": "peer",
    "serve": "serve",
    "login": "login",
    "logout": "login",
    "whoami": "login",
    "query": "query",
    "join": "join",
    "usage": "usage",
    "demo": "demo",
    "db": "db",
    "standard": "standard",
    "provider": "provider",
    "dataset": "dataset",
    "catalog": "catalog",
    "account": "account",
    "access": "access",
    "policy": "policy",
    "budget": "budget",
    "release": "release",
    "share": "share",
    "audit": "audit",
    "receipt": "receipt",
    "opening": "opening",
}


class _Commands(MutableMapping[str, click.Command]):
    """The root group's commands, each built from its module on first access."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = dict(table)
        self._built: dict[str, click.Command] = {}

    def _build(self, module: str) -> None:
        # A throwaway app with a callback is always a group, even for one command.
        holder = typer.Typer(rich_markup_mode="rich")
        holder.callback()(lambda: None)
        importlib.import_module(f"entrepot.cli.{module}").register(holder)
        group = typer.main.get_command(holder)
        assert isinstance(group, typer.core.TyperGroup)
        self._built.update(group.commands)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built and name in self._table:
            self._build(self._table[name])
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._table.pop(name, None)
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._table
        yield from (name for name in self._built if name not in self._table)

    def __len__(self) -> int:
        return len(self._table.keys() | self._built.keys())


class _LazyGroup(typer.core.TyperGroup):
    """The root group: lists commands from :data:`COMMANDS`, builds one when it is used."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(COMMANDS)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    name="entrepot",
    help="A privacy-preserving data exchange: trade the insight, not the data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=_LazyGroup,
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
        if isinstance(error, ValidationError) and error.title == "Settings":
            fail(bad_setting(error), as_json="--json" in sys.argv)
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
