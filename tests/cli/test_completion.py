"""Shell completion installs for bash, zsh and fish, and completes commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ENTREPOT = [sys.executable, "-m", "entrepot"]


def _run(args: list[str], home: Path, **env: str) -> str:
    done = subprocess.run(
        [*ENTREPOT, *args],
        capture_output=True,
        text=True,
        check=True,
        # The shell is named on the command line, not detected from the parent process.
        env={
            **os.environ,
            "HOME": str(home),
            "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1",
            **env,
        },
    )
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_installs_for_the_shell(shell: str, tmp_path: Path) -> None:
    out = _run(["--install-completion", shell], tmp_path)
    installed = re.search(rf"{shell} completion installed in (\S+)", out)
    assert installed is not None, out
    script = Path(installed.group(1))
    assert script.is_relative_to(tmp_path)
    assert "_ENTREPOT_COMPLETE" in script.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("shell", "env"),
    [
        ("bash", {"COMP_WORDS": "entrepot cat", "COMP_CWORD": "1"}),
        ("zsh", {"_TYPER_COMPLETE_ARGS": "entrepot cat"}),
        (
            "fish",
            {"_TYPER_COMPLETE_ARGS": "entrepot cat", "_TYPER_COMPLETE_FISH_ACTION": "get-args"},
        ),
    ],
)
def test_completion_names_the_commands(shell: str, env: dict[str, str], tmp_path: Path) -> None:
    out = _run([], tmp_path, _ENTREPOT_COMPLETE=f"complete_{shell}", **env)
    assert "catalog" in out
