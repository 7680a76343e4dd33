"""`entrepot audit verify --full` on a log tampered with on disk: each way is caught."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from tests.exchange.logged_world import seed
from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.errors import EntrepotError
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.transparency import make_entry
from entrepot.transparency.merkle import leaf_hash, verify_inclusion


def verify(home: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify", "--full", "--home", str(home), "--json"])
    return result.exit_code, result.stdout + _error(result.exception)


def _error(error: BaseException | None) -> str:
    """What the CLI says of an error: its message and its hint."""
    if not isinstance(error, EntrepotError):
        return ""
    return f"{error.message}\n{error.hint}"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A node whose changes and one answer went through the log, a head after each entry."""
    node = Node.init(Settings(home=tmp_path / "node", log_head_every_entries=1))
    seed(node, tmp_path)
    node.close()
    return tmp_path / "node"


def test_an_untouched_log_verifies_and_says_what_needs_a_witness(home: Path) -> None:
    code, output = verify(home)
    assert code == 0, output
    data = json.loads(output)
    assert data["database"]["ok"] is True
    assert data["database"]["checked"]["ledger rows"] == 1
    assert "witness" in data["needs_witness"]


def test_a_deleted_log_directory_is_not_an_empty_log(home: Path) -> None:
    shutil.rmtree(home / "log")
    code, output = verify(home)
    assert code != 0
    assert "node.db saw it hold 5" in output
    assert "published, but the log has no entry" in output


def test_truncated_entries_and_heads_are_caught(home: Path) -> None:
    """The last entry (the answer) and its head cut off, all files consistent again."""
    log = home / "log"
    index = (log / "entries.idx").read_bytes()
    kept = len(index) // 8 - 1
    end = struct.unpack(">Q", index[(kept - 1) * 8 : kept * 8])[0]
    (log / "entries.idx").write_bytes(index[: kept * 8])
    (log / "entries.bin").write_bytes((log / "entries.bin").read_bytes()[:end])
    (log / "tree.bin").write_bytes(
        (log / "tree.bin").read_bytes()[: (2 * kept - kept.bit_count()) * 32]
    )
    heads = (log / "heads.jsonl").read_bytes().splitlines(keepends=True)
    (log / "heads.jsonl").write_bytes(b"".join(heads[:-1]))
    code, output = verify(home)
    assert code != 0
    assert f"the log holds {kept} entries, but node.db saw it hold {kept + 1}" in output
    assert "ledger row 1" in output


def test_a_head_deleted_from_the_middle_is_caught(home: Path) -> None:
    heads = (home / "log" / "heads.jsonl").read_bytes().splitlines(keepends=True)
    (home / "log" / "heads.jsonl").write_bytes(b"".join(heads[:2] + heads[3:]))
    code, output = verify(home)
    assert code != 0
    assert "signed heads were removed" in output


def test_a_head_replaced_before_the_last_one_node_db_saw_is_caught(home: Path) -> None:
    """Same length, other bytes: a head in the middle swapped for a later one."""
    heads = (home / "log" / "heads.jsonl").read_bytes().splitlines(keepends=True)
    (home / "log" / "heads.jsonl").write_bytes(b"".join(heads[:-1] + heads[-2:-1]))
    code, output = verify(home)
    assert code != 0
    assert "a head before it was removed or altered" in output


def test_a_forged_entry_after_the_last_head_is_caught(home: Path) -> None:
    node = Node(Settings(home=home), _key(home))
    node.log.append(
        make_entry("grant", "org:riverside-hospitals", grant="GRANT-9", change="granted")
    )
    node.close()
    code, output = verify(home)
    assert code != 0
    assert "GRANT-9" in output


def test_a_corrupted_leaf_hash_fails_verify_and_prove_until_repaired(home: Path) -> None:
    tree = home / "log" / "tree.bin"
    nodes = bytearray(tree.read_bytes())
    nodes[0] ^= 0xFF  # the leaf hash of entry 0, covered by the stored root of a full subtree
    tree.write_bytes(bytes(nodes))
    code, output = verify(home)
    assert code != 0
    assert "tree.bin differs at node 0" in output

    proved = CliRunner().invoke(app, ["audit", "prove", "1", "--home", str(home), "--json"])
    assert proved.exit_code != 0
    assert "entrepot audit repair" in _error(proved.exception)

    repaired = CliRunner().invoke(app, ["audit", "repair", "--home", str(home), "--json"])
    assert repaired.exit_code == 0, repaired.output
    assert verify(home)[0] == 0
    proof = json.loads(
        CliRunner().invoke(app, ["audit", "prove", "1", "--home", str(home), "--json"]).output
    )
    path = [bytes.fromhex(node) for node in proof["inclusion"]]
    root = bytes.fromhex(proof["head"]["root"])
    verify_inclusion(leaf_hash(proof["entry"].encode()), 1, proof["size"], path, root)


def _key(home: Path) -> SigningKey:
    return SigningKey((home / "keys" / "node.key").read_bytes())
