"""Run the `entrepot` command in-process, through the same entry point as the console script."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from entrepot.cli import _common as common
from entrepot.cli.app import main


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def errors(self) -> str:
        """Standard error with Rich's line wrapping undone."""
        return " ".join(self.stderr.split())

    @property
    def output(self) -> str:
        """Standard output with Rich's line wrapping undone."""
        return " ".join(self.stdout.split())


# A bound runner: ``cli("catalog", "list")`` with the test node's --home appended.
Cli = Callable[..., Result]


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> Result:
    """``entrepot *args``: its exit code and output, errors handled as for a user."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["entrepot", *args])
    # Wide enough that Rich never wraps a table cell the tests look for. The consoles
    # are made at import, so their width is set here rather than through COLUMNS.
    for shared in (common.console, common.err_console):
        monkeypatch.setattr(shared, "width", 250)
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out = capsys.readouterr()
    return Result(code, out.out, out.err)
