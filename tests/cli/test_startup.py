"""A command that reads a local node loads no more than it needs.

Each heavy library here costs a start-up between 0.1 and 0.4 s of CPU; none is needed
to list the catalog or the standards, and no command runs the migrations of a schema
that is already at their head.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from entrepot.db import Database
from entrepot.exchange.node import Node
from entrepot.settings import Settings

HEAVY = ("alembic", "duckdb", "httpx", "opendp", "pandas", "pyarrow", "sqlglot")

# Runs the real command in a fresh interpreter, then names the heavy modules it loaded.
_PROBE = """
import json, sys
from entrepot.cli.app import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = %r
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


def _loaded(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Node.init(Settings(home=tmp_path / "node")).close()
    return tmp_path / "node"


@pytest.mark.parametrize(
    "command", [["catalog", "list"], ["standard", "list"], ["budget"], ["audit", "log"]]
)
def test_a_read_only_local_command_loads_no_heavy_library(home: Path, command: list[str]) -> None:
    assert _loaded(*command, "--home", str(home)) == []


def test_a_schema_behind_the_migrations_is_brought_to_their_head(tmp_path: Path) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from entrepot.db import alembic_config

    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, str(previous))
        db.upgrade()
        with db.engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert [row[0] for row in stored] == [head]
    finally:
        db.dispose()
