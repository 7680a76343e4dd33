from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from entrepot.errors import ExitCode


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def test_init_creates_home_with_db_vaults_and_private_key(tmp_path: Path) -> None:
    home = tmp_path / "exchange"
    result = entrepot("init", "--home", str(home), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert len(bytes.fromhex(out["node_key"])) == 32
    for name in ("node.db", "vaults", "quarantine", "log", "keys/node.pub"):
        assert (home / name).exists(), name
    assert stat.S_IMODE((home / "keys" / "node.key").stat().st_mode) == 0o600


def test_init_refuses_an_existing_node_without_traceback(tmp_path: Path) -> None:
    home = tmp_path / "exchange"
    assert entrepot("init", "--home", str(home)).returncode == 0
    again = entrepot("init", "--home", str(home))
    assert again.returncode == ExitCode.CONFLICT
    assert "already holds a node" in again.stderr
    assert "Traceback" not in again.stderr
