"""One table of exit codes: each error class names its code, docs/cli.md shows the same
table, and real commands end with it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from entrepot import errors
from entrepot.cli._common import fail
from entrepot.errors import EntrepotError, ExitCode, from_body

DOCS = Path(__file__).parents[2] / "docs" / "cli.md"
TREE = sorted(
    (c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, EntrepotError)),
    key=lambda c: c.code,
)


def _documented() -> dict[str, int]:
    """Each error ``code`` of docs/cli.md's table, with the exit code of its row."""
    found: dict[str, int] = {}
    for row in re.findall(r"^\| (\d+) \|[^|]*\|([^|]*)\|$", DOCS.read_text(), re.MULTILINE):
        for code in re.findall(r"`(\w+)`", row[1]):
            found[code] = int(row[0])
    return found


@pytest.mark.parametrize("cls", TREE, ids=[c.code for c in TREE])
def test_each_error_ends_the_command_with_its_documented_code(
    cls: type[EntrepotError], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _documented()[cls.code] == cls.exit_code
    with pytest.raises(SystemExit) as ended:
        fail(from_body({"code": cls.code, "message": "it went wrong", "hint": "try again"}))
    assert ended.value.code == cls.exit_code
    assert "error: it went wrong" in capsys.readouterr().err


def test_the_docs_table_lists_every_exit_code() -> None:
    rows = {int(n) for n in re.findall(r"^\| (\d+) \|", DOCS.read_text(), re.MULTILINE)}
    assert rows == {int(code) for code in ExitCode}


def entrepot(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")},
            "ENTREPOT_CLIENT_CONFIG": str(home / "remote.json"),
        },
    )


def test_real_commands_end_with_the_table_s_codes(tmp_path: Path) -> None:
    node = str(tmp_path / "node")
    assert entrepot("init", "--home", node, home=tmp_path).returncode == ExitCode.OK
    assert entrepot("init", "--home", node, home=tmp_path).returncode == ExitCode.CONFLICT
    usage = entrepot("catalog", "list", "--no-such-option", home=tmp_path)
    assert usage.returncode == ExitCode.USAGE
    missing = entrepot("catalog", "show", "nobody/nothing", "--home", node, home=tmp_path)
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "Traceback" not in missing.stderr


def test_an_unreachable_server_ends_with_its_code(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    login = entrepot("login", f"http://127.0.0.1:{port}", "--token", "ent_0_x", home=tmp_path)
    assert login.returncode == ExitCode.UNREACHABLE, login.stderr
    assert "Traceback" not in login.stderr
