"""`entrepot db status`: which database a node uses, and whether its schema is behind."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from entrepot.cli.app import app
from entrepot.exchange.node import Node
from entrepot.settings import Settings


def status(home: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["db", "status", "--home", str(home), *extra])
    return result.exit_code, result.output


def test_status_names_the_database_and_its_revision(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    code, output = status(home, "--json")
    assert code == 0
    found = json.loads(output)
    assert found["database"] == f"sqlite:///{home}/node.db"
    assert found["backend"] == "sqlite"
    assert found["revision"] == found["head"]
    assert found["behind"] is False


def test_status_tells_a_schema_behind_and_leaves_it_so(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    with sqlite3.connect(home / "node.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0001'")
    code, output = status(home, "--json")
    assert code == 0
    assert json.loads(output)["behind"] is True
    assert json.loads(status(home, "--json")[1])["revision"] == "0001"


def test_status_of_no_node_or_another_database_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(Settings(home=home)).close()
    assert status(tmp_path / "nothing")[0] != 0
    stray = f"sqlite:///{tmp_path}/stray.db"
    assert status(home, "--db", stray)[0] != 0
    assert not (tmp_path / "stray.db").exists()
