"""`entrepot node id` and `entrepot peer`, as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from entrepot.errors import ExitCode
from entrepot.transparency.notes import log_verifier, parse_vkey, witness_verifier


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def test_node_id_prints_the_name_url_and_the_key_init_made(tmp_path: Path) -> None:
    home = str(tmp_path / "a")
    made = json.loads(entrepot("init", "--home", home, "--json").stdout)
    told = json.loads(entrepot("node", "id", "--home", home, "--json").stdout)
    key = made["node_key"]
    assert told == {
        "name": f"node-{key[:8]}",
        "url": "http://127.0.0.1:8000/",
        "key": key,
        "log_vkey": log_verifier(bytes.fromhex(key)).vkey(),
        "witness_vkey": witness_verifier(bytes.fromhex(key)).vkey(),
    }
    assert parse_vkey(told["log_vkey"]).name == f"entrepot.log/{key[:32]}"
    shown = entrepot("node", "id", "--home", home)
    assert f"entrepot peer add http://127.0.0.1:8000/ --key {made['node_key']}" in shown.stdout


def test_peer_commands_name_what_is_wrong(tmp_path: Path) -> None:
    home = str(tmp_path / "a")
    entrepot("init", "--home", home)
    assert json.loads(entrepot("peer", "list", "--home", home, "--json").stdout) == []
    bad = entrepot("peer", "add", "ftp://x", "--key", "00" * 32, "--home", home)
    assert bad.returncode == ExitCode.INVALID
    assert "not a peer's URL" in bad.stderr
    # another machine over plain HTTP: refused before any call, unless allowed by name
    plain = entrepot("peer", "add", "http://192.0.2.10:8000", "--key", "00" * 32, "--home", home)
    assert plain.returncode == ExitCode.INVALID
    assert "ENTREPOT_ALLOW_PLAIN_HTTP" in " ".join(plain.stderr.split())
    gone = entrepot("peer", "remove", "nobody", "--home", home)
    assert gone.returncode == ExitCode.NOT_FOUND
    assert "no peer named nobody" in gone.stderr
