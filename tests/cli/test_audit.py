"""`entrepot audit ...` through a real subprocess, on a real node."""

from __future__ import annotations

import json
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.transparency import make_entry
from entrepot.transparency.merkle import leaf_hash, verify_inclusion


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess: for exit codes and error output."""
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args], capture_output=True, text=True, check=False
    )


def cli(*args: str) -> str:
    """The command in-process (starting Python for every call is slow); returns stdout."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("audit") / "node"
    node = Node.init(Settings(home=home, log_head_every_entries=4))
    node.log.append_many(
        [
            make_entry("peer", "admin", dataset="riverside/visits", action="added"),
            make_entry(
                "query",
                "acme",
                dataset="riverside/visits",
                purpose="planning",
                epsilon=0.1,
                outcome="accepted",
                query_commitment="ab" * 32,
            ),
            make_entry("query", "acme", dataset="other/set", epsilon=0.2, outcome="refused"),
        ]
    )
    node.close()
    return home


def test_log_lists_who_what_purpose_and_epsilon(home: Path) -> None:
    rows = json.loads(cli("audit", "log", "--home", str(home), "--kind", "query", "--json"))
    assert [(r["index"], r["outcome"], r["epsilon"]) for r in rows] == [
        (1, "accepted", "0.1"),
        (2, "refused", "0.2"),
    ]
    table = cli("audit", "log", "--home", str(home), "--dataset", "riverside/visits")
    assert "planning" in table
    assert "0.1" in table


def test_prove_gives_an_inclusion_proof_to_a_signed_head(home: Path) -> None:
    proof = json.loads(cli("audit", "prove", "1", "--home", str(home), "--json"))
    entry = proof["entry"].encode()
    path = [bytes.fromhex(h) for h in proof["inclusion"]]
    verify_inclusion(leaf_hash(entry), 1, proof["size"], path, bytes.fromhex(proof["head"]["root"]))


def test_an_entry_outside_the_tree_asked_for_is_told_which_sizes_hold_it(home: Path) -> None:
    outside = entrepot("audit", "prove", "2", "--size", "2", "--home", str(home))
    assert outside.returncode == 5, outside.stderr
    assert "entry 2 is not in the tree of size 2" in outside.stderr
    assert "--size above 2" in outside.stderr
    beyond = entrepot("audit", "prove", "9", "--home", str(home))
    assert beyond.returncode == 4, beyond.stderr
    assert "no log entry 9" in beyond.stderr


def test_verify_from_an_earlier_head_then_after_more_entries(home: Path, tmp_path: Path) -> None:
    saved = tmp_path / "head-old.json"
    head = cli("audit", "head", "--new", "--home", str(home), "--json")
    saved.write_text(head)
    node = Node.open(Settings(home=home))
    node.log.append(make_entry("download", "acme", dataset="riverside/visits"))
    node.close()
    out = json.loads(
        cli("audit", "verify", "--from-head", str(saved), "--home", str(home), "--json")
    )
    assert out["consistency"]["size1"] == json.loads(head)["size"]
    assert out["consistency"]["size2"] == out["consistency"]["size1"] + 1
    forged = json.loads(head) | {"size": 1}
    saved.write_text(json.dumps(forged))
    with pytest.raises(ProofInvalid, match="earlier tree head signature"):
        cli("audit", "verify", "--from-head", str(saved), "--home", str(home))


def test_verify_checks_the_node_key_given_against_the_nodes_own(home: Path, tmp_path: Path) -> None:
    own = home / "keys" / "node.pub"
    out = json.loads(cli("audit", "verify", "--node-key", str(own), "--home", str(home), "--json"))
    assert out["ok"] is True
    stranger = tmp_path / "other.pub"
    stranger.write_text(bytes(SigningKey.generate().verify_key).hex(), encoding="utf-8")
    with pytest.raises(ProofInvalid, match="not the --node-key given"):
        cli("audit", "verify", "--node-key", str(stranger), "--home", str(home))


def test_export_verifies_without_the_node(home: Path, tmp_path: Path) -> None:
    copy = tmp_path / "log-copy"
    cli("audit", "export", str(copy), "--home", str(home))
    key = str(copy / "node.pub")
    assert (
        json.loads(cli("audit", "verify-export", str(copy), "--node-key", key, "--json"))["entries"]
        >= 3
    )
    lines = (copy / "entries.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("acme", "acmx")
    (copy / "entries.jsonl").write_text("".join(lines))
    with pytest.raises(ProofInvalid, match="do not hash to the root"):
        cli("audit", "verify-export", str(copy), "--node-key", key)


def test_an_export_onto_a_file_is_refused_naming_it(home: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("kept")
    for target in (taken, taken / "below"):
        with pytest.raises(InvalidInput, match="a file stands at it or on its path"):
            cli("audit", "export", str(target), "--home", str(home))
    assert taken.read_text() == "kept"


def test_a_torn_log_is_reported_and_repaired(tmp_path: Path) -> None:
    home = tmp_path / "node"
    node = Node.init(Settings(home=home))
    node.log.append(make_entry("peer", "node-b", action="added"))
    node.close()
    with (home / "log" / "entries.bin").open("ab") as out:
        out.write(b"\x00\x00")
    torn = entrepot("audit", "log", "--home", str(home))
    assert torn.returncode == 1
    assert "torn" in torn.stderr
    assert "entrepot audit repair" in torn.stderr
    assert "Traceback" not in torn.stderr
    repaired = cli("audit", "repair", "--home", str(home), "--json")
    assert json.loads(repaired)["torn_bytes"] == 2
    assert "verified" in cli("audit", "verify", "--home", str(home))


def test_a_new_node_signs_a_head_of_its_empty_log_then_extends_it(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    Node.init(Settings(home=home)).close()
    head = cli("audit", "head", "--home", str(home), "--json")
    # RFC 9162 section 2.1.1: the empty tree's hash is SHA-256 of the empty string.
    assert (json.loads(head)["size"], json.loads(head)["root"]) == (0, sha256(b"").hexdigest())
    saved = tmp_path / "head-0.json"
    saved.write_text(head)
    node = Node.open(Settings(home=home))
    node.log.append(make_entry("download", "acme", dataset="riverside/visits"))
    node.close()
    out = json.loads(
        cli("audit", "verify", "--from-head", str(saved), "--home", str(home), "--json")
    )
    assert (out["consistency"]["size1"], out["consistency"]["size2"]) == (0, 1)
