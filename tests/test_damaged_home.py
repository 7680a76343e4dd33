"""A node's home damaged on disk: each command names what is wrong and changes nothing.

Every case runs the real command line (``python -m entrepot``) on a copy of one seeded
home, and checks the message, the exit code and that the damaged file is as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from tests.exchange.logged_world import CONSUMER, SQL, seed

from entrepot import db as node_db
from entrepot.db import schema_head
from entrepot.errors import ExitCode
from entrepot.exchange.node import Node
from entrepot.settings import Settings


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node with a published version, a grant and an answer in its log."""
    root = tmp_path_factory.mktemp("seeded")
    node = Node.init(Settings(home=root / "node"))
    seed(node, root)
    node.close()
    return root / "node"


@pytest.fixture
def home(seeded: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "node"
    shutil.copytree(seeded, copy, symlinks=True)
    return copy


def entrepot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")},
    )


def refused(done: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> None:
    """The command failed with ``code``, a message holding ``words`` and a hint."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert "hint:" in done.stderr
    said = " ".join(done.stderr.split())
    for word in words:
        assert word in said, said


def set_revision(home: Path, revision: str) -> None:
    with sqlite3.connect(home / "node.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def revision(home: Path) -> str:
    with sqlite3.connect(home / "node.db") as connection:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])


@pytest.mark.parametrize("damage", ["missing", "empty"])
def test_a_lost_database_is_not_replaced_by_an_empty_one(home: Path, damage: str) -> None:
    database = home / "node.db"
    database.unlink()
    if damage == "empty":
        database.touch()
    done = entrepot("catalog", "list", "--home", str(home))
    refused(done, ExitCode.INTERNAL, f"{database} is {damage}", "backup")
    assert database.exists() == (damage == "empty")
    assert not database.exists() or database.stat().st_size == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_named_and_left_as_it_is(home: Path, damage: str) -> None:
    database = home / "node.db"
    data = database.read_bytes()
    damaged = os.urandom(len(data)) if damage == "garbage" else data[:8192]
    database.write_bytes(damaged)
    for command in (["catalog", "list"], ["db", "status"], ["audit", "verify"]):
        done = entrepot(*command, "--home", str(home))
        refused(done, ExitCode.INTERNAL, str(database), "cannot be read as an SQLite database")
    assert database.read_bytes() == damaged


def test_a_database_of_a_newer_version_is_refused_untouched(home: Path) -> None:
    set_revision(home, "9999")
    done = entrepot("catalog", "list", "--home", str(home))
    refused(done, ExitCode.CONFLICT, "revision 9999", "newer than this version")
    assert revision(home) == "9999"
    status = entrepot("db", "status", "--home", str(home), "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert (shown["revision"], shown["head"]) == ("9999", schema_head())
    assert (shown["newer"], shown["behind"]) == (True, False)


def test_a_schema_that_does_not_match_its_revision_is_rolled_back(home: Path) -> None:
    """Tables at the newest migration, recorded as the one before: the migration fails."""
    versions = Path(node_db.__file__).with_name("migrations") / "versions"
    earlier = sorted(versions.glob("0*.py"))[-2].name.split("_")[0]
    set_revision(home, earlier)
    done = entrepot("catalog", "list", "--home", str(home))
    refused(done, ExitCode.INTERNAL, f"cannot be migrated from revision {earlier}", "rolled back")
    assert revision(home) == earlier


def test_a_key_replaced_by_another_node_s_is_refused(home: Path) -> None:
    key = home / "keys" / "node.key"
    key.write_bytes(os.urandom(32))
    heads = (home / "log" / "heads.jsonl").read_bytes()
    done = entrepot("node", "id", "--home", str(home))
    refused(done, ExitCode.INTERNAL, f"{key} is not the key", "node.pub")
    assert (home / "log" / "heads.jsonl").read_bytes() == heads


def test_a_query_under_a_replaced_key_spends_nothing(home: Path) -> None:
    (home / "keys" / "node.key").write_bytes(os.urandom(32))
    done = entrepot("query", "--home", str(home), "--as", CONSUMER, "-e", "0.25", SQL)
    refused(done, ExitCode.INTERNAL, "is not the key", "node.pub")
    with sqlite3.connect(home / "node.db") as connection:
        [reserved] = connection.execute("SELECT COUNT(*) FROM ledger_entries").fetchone()
    assert reserved == 1  # the seeded answer's, and no other


def test_a_key_that_is_a_directory_is_named(home: Path) -> None:
    key = home / "keys" / "node.key"
    key.unlink()
    key.mkdir()
    done = entrepot("catalog", "list", "--home", str(home))
    refused(done, ExitCode.INTERNAL, f"{key} cannot be read")


def test_permissions_are_tightened_and_never_widened(home: Path) -> None:
    key, database = home / "keys" / "node.key", home / "node.db"
    key.chmod(0o644)
    database.chmod(0o400)
    done = entrepot("catalog", "list", "--home", str(home))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.stat().st_mode) == 0o400


def test_a_vault_directory_replaced_by_a_file_is_named(home: Path) -> None:
    vaults = home / "vaults"
    shutil.rmtree(vaults)
    vaults.write_text("not a directory\n")
    done = entrepot("catalog", "list", "--home", str(home))
    refused(done, ExitCode.INTERNAL, f"{vaults} is not a directory")
    assert vaults.read_text() == "not a directory\n"
    assert stat.S_ISREG(vaults.stat().st_mode)


def test_a_recorded_database_that_is_no_url_is_named(home: Path) -> None:
    (home / "database.json").write_text('{"url": "nonsense"}\n')
    done = entrepot("db", "status", "--home", str(home))
    refused(done, ExitCode.INTERNAL, "database.json names no database")


def test_init_refuses_a_file_or_a_dangling_link_as_the_home(tmp_path: Path) -> None:
    file, link = tmp_path / "file", tmp_path / "link"
    file.write_text("mine\n")
    link.symlink_to(tmp_path / "nowhere")
    refused(entrepot("init", "--home", str(file)), ExitCode.INVALID, "is a file, not a directory")
    refused(entrepot("init", "--home", str(link)), ExitCode.INVALID, "which does not exist")
    assert file.read_text() == "mine\n"
    assert not (tmp_path / "nowhere").exists()
