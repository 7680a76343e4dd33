"""Every command's --help renders, with the default of every option that has one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from entrepot.cli.app import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, typer.core.TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _has_default(option: typer.core.TyperOption) -> bool:
    """A default the reader needs told: set in code, or described in the help text."""
    if "[default:" in (option.help or ""):
        return True
    if option.is_flag:
        # An off switch needs no telling; an on one (--x/--no-x) does.
        return option.default is True and bool(option.secondary_opts)
    return option.default not in (None, "", ())


PATHS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "entrepot" for p in PATHS])
def test_help_shows_the_default_of_every_option(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    for option in _command(path).params:
        if not isinstance(option, typer.core.TyperOption) or option.hidden:
            continue
        if not _has_default(option):
            continue
        # A row of the options panel: "│ [*] --name  [-n]  <type>  help  [default: …] │".
        start = re.compile(rf"^│\s*\*?\s*{re.escape(option.opts[0])}\s")
        row = next((r for r in rows if start.match(r)), None)
        assert row is not None, f"{option.opts[0]} is missing from the help of {path}"
        assert "[default: " in row, f"{option.opts[0]} of {path} hides its default: {row}"
