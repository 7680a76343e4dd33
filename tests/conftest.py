from __future__ import annotations

import os
import tempfile

# A developer's own `entrepot login` must not send the tests' commands to a server:
# every test process starts logged out (tests that log in use a file of their own).
os.environ["ENTREPOT_CLIENT_CONFIG"] = os.path.join(tempfile.mkdtemp(), "remote.json")
os.environ.pop("ENTREPOT_AS", None)

# Rich sizes tables to the terminal, and to 80 columns without one; tests read the
# rendered text, so give every test process and subprocess one wide, fixed width.
os.environ["COLUMNS"] = "200"
os.environ["LINES"] = "50"

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from entrepot.db import Database
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from marketplace import Clock, Market
from pg import Cluster, find_bindir


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A fresh node on a real SQLite file in a temporary home."""
    opened = Node.init(Settings(home=tmp_path / "node"))
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster per test process (see tests/pg.py)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are absent: run `make system-deps`")
    with Cluster.running(bindir) as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database."""
    with pg_cluster.database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata DB URL: a real SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def any_node(tmp_path: Path, db_url: str) -> Iterator[Node]:
    """A fresh node whose metadata lives on SQLite, then on PostgreSQL."""
    # Argon2id with 1 MiB instead of 64: the same code path, without seconds per token.
    opened = Node.init(Settings(home=tmp_path / "node", db=db_url, token_hash_memory_kib=1024))
    yield opened
    opened.close()


@pytest.fixture
def market(any_node: Node) -> Market:
    """The exchange on SQLite, then on PostgreSQL, at 2026-11-15 10:00 UTC."""
    return Market.on(any_node, Clock(datetime(2026, 11, 15, 10, 0)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema at all, for migrations to build: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'node.db'}")
        yield db
        db.dispose()
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    with cluster.empty_database() as url:
        db = Database(url)
        yield db
        db.dispose()
