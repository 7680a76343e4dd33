"""A home records its metadata database and refuses to open on another."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import make_url

from entrepot.db import same_database, shown
from entrepot.errors import ExitCode, InvalidInput, StorageCorrupt
from entrepot.exchange.node import Node, record_database, recorded_database
from entrepot.settings import Settings


def test_a_new_home_records_its_sqlite_file_relative_to_itself(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    record = home / "database.json"
    assert json.loads(record.read_text()) == {"url": "sqlite:///{home}/node.db"}
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert recorded_database(home) == f"sqlite:///{home}/node.db"


def test_a_key_file_that_holds_no_seed_is_refused_when_the_node_opens(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    key = home / "keys" / "node.key"
    key.write_bytes(key.read_bytes()[:31])
    with pytest.raises(StorageCorrupt) as refused:
        Node.open(Settings(home=home))
    assert str(key) in refused.value.message


def test_an_opened_node_signs_with_the_key_its_home_holds(tmp_path: Path) -> None:
    home = tmp_path / "node"
    made = Node.init(Settings(home=home))
    made.close()
    node = Node.open(Settings(home=home))
    try:
        assert bytes(node.verify_key) == bytes(made.verify_key)
        assert bytes(node.signing_key) == (home / "keys" / "node.key").read_bytes()
    finally:
        node.close()


def test_another_database_is_refused_naming_both(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    stray = tmp_path / "stray.db"
    with pytest.raises(InvalidInput) as refused:
        Node.open(Settings(home=home, db=f"sqlite:///{stray}"))
    assert str(home / "node.db") in refused.value.message
    assert str(stray) in refused.value.message
    assert "entrepot db move" in refused.value.hint
    assert not stray.exists()  # refused before anything was opened
    # Its own URL, spelt out, is the same database.
    Node.open(Settings(home=home, db=f"sqlite:///{home}/node.db")).close()


def test_a_moved_home_opens_where_it_is(tmp_path: Path) -> None:
    Node.init(Settings(home=tmp_path / "a")).close()
    shutil.move(tmp_path / "a", tmp_path / "b")
    Node.open(Settings(home=tmp_path / "b")).close()


def test_a_home_without_a_record_adopts_its_database(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    (home / "database.json").unlink()
    Node.open(Settings(home=home)).close()
    assert recorded_database(home) == f"sqlite:///{home}/node.db"


def test_the_cli_names_both_databases_without_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    result = subprocess.run(
        [sys.executable, "-m", "entrepot", "catalog", "list", "--home", str(home)],
        env={**os.environ, "ENTREPOT_DB": f"sqlite:///{tmp_path}/other.db"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitCode.INVALID
    text = "".join(result.stderr.split())
    assert f"{tmp_path}/other.db" in text
    assert f"{home}/node.db" in text
    assert "Traceback" not in result.stderr


def test_a_password_is_never_written_down(tmp_path: Path) -> None:
    tmp_path.joinpath("node").mkdir()
    record_database(tmp_path / "node", "postgresql://entrepot:s3cret@db.internal:5432/x?x=1")
    text = (tmp_path / "node" / "database.json").read_text()
    assert "s3cret" not in text
    assert json.loads(text) == {"url": "postgresql://entrepot@db.internal:5432/x"}


names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@given(
    user=names,
    password=names,
    host=names,
    database=names,
    port=st.integers(1, 65535),
    driver=st.sampled_from(["postgresql", "postgresql+psycopg"]),
)
def test_driver_password_and_options_do_not_change_the_database(
    user: str, password: str, host: str, database: str, port: int, driver: str
) -> None:
    url = f"{driver}://{user}:{password}@{host}:{port}/{database}?sslmode=require"
    assert same_database(url, f"postgresql://{user}@{host}:{port}/{database}")
    assert make_url(shown(url)).password is None
    assert "sslmode" not in shown(url)
    assert not same_database(url, f"postgresql://{user}@{host}:{port}/{database}x")
    assert not same_database(url, f"postgresql://{user}x@{host}:{port}/{database}")
