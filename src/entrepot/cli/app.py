"""The `entrepot` command: a Typer app assembled from one module per noun."""

from __future__ import annotations

import copy
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
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
    """A group's commands by name, each built on first access by ``build(name)``, which
    returns it and any other command built along with it."""

    def __init__(
        self, names: Iterable[str], build: Callable[[str], Mapping[str, click.Command]]
    ) -> None:
        self._names = list(names)
        self._build = build
        self._built: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._built and name in self._names:
            self._built.update(self._build(name))
        return self._built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name in self._names:
            self._names.remove(name)
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._names
        yield from (name for name in self._built if name not in self._names)

    def __len__(self) -> int:
        return len(set(self._names) | self._built.keys())


class _LazyGroup(typer.core.TyperGroup):
    """A group that lists its commands by name and builds one only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _built_later(group: click.Command, commands: list[typer.models.CommandInfo]) -> None:
    """Give ``group`` the Typer ``commands``, each built into a Click command on first use."""
    assert isinstance(group, typer.core.TyperGroup)
    infos = {
        info.name or typer.main.get_command_name(info.callback.__name__): info
        for info in commands
        if info.callback is not None
    }
    group.commands = _Commands(
        infos,
        lambda name: {
            name: typer.main.get_command_from_info(
                infos[name], pretty_exceptions_short=True, rich_markup_mode="rich"
            )
        },
    )


def _module_commands(name: str) -> dict[str, click.Command]:
    """The commands of the module of ``entrepot.cli`` that adds the command ``name``; the
    subcommands of a noun are built when one of them is used (building all five of
    `catalog`'s cost its `list` about 10 M instructions)."""
    # A throwaway app with a callback is always a group, even for one command.
    holder = typer.Typer(rich_markup_mode="rich")
    holder.callback()(lambda: None)
    importlib.import_module(f"entrepot.cli.{COMMANDS[name]}").register(holder)
    deferred: dict[str, list[typer.models.CommandInfo]] = {}
    for info in holder.registered_groups:
        noun = info.typer_instance
        # Named where it is added, or by its own app; an unnamed one is built whole.
        if noun is None:
            continue
        noun_name = info.name if isinstance(info.name, str) else noun.info.name
        if not isinstance(noun_name, str):
            continue
        # The holder's copy of the noun's app, without its commands: the module's own
        # app stays whole.
        info.typer_instance = copy.copy(noun)
        info.typer_instance.registered_commands = []
        info.cls = _LazyGroup
        deferred[noun_name] = noun.registered_commands
    group = typer.main.get_command(holder)
    assert isinstance(group, typer.core.TyperGroup)
    for built, commands in deferred.items():
        _built_later(group.commands[built], commands)
    return dict(group.commands)


class _RootGroup(_LazyGroup):
    """The root group: lists commands from :data:`COMMANDS`, builds one when it is used."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(COMMANDS, _module_commands)


app = typer.Typer(
    name="entrepot",
    help="A privacy-preserving data exchange: trade the insight, not the data.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=_RootGroup,
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
