"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary directory.

The cluster listens on a free loopback port with trust authentication and is removed
when the test session ends. When the tests run as root (as `make test` does on a fresh
Debian machine), the server runs as the ``postgres`` user via ``runuser``, since
PostgreSQL refuses to run as root. Each test gets its own database, copied from a
template migrated once per session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from entrepot.db import Database

__all__ = ["Cluster", "find_bindir"]

# Enough for 20 threads and several processes, each with a pool, in the concurrency tests.
_MAX_CONNECTIONS = 400
_TEMPLATE = "entrepot_template"


def find_bindir() -> Path | None:
    """Where Debian (or the PATH) keeps initdb and pg_ctl; the newest version wins."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for bindir in reversed(versions):
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A running cluster; :meth:`database` hands out fresh, empty databases."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        # Durability of the throwaway cluster does not matter; speed does.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={_MAX_CONNECTIONS} -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        admin = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql)

    def migrate_template(self) -> None:
        """Build a migrated template once: copying it is much faster than migrating."""
        self._admin(f'CREATE DATABASE "{_TEMPLATE}"')
        db = Database(self.url(_TEMPLATE))
        try:
            db.upgrade()
        finally:
            db.dispose()

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new database at the newest schema, dropped afterwards; yields its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
        try:
            yield self.url(name)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def empty_database(self) -> Iterator[str]:
        """A new database with no schema at all, dropped afterwards; yields its URL."""
        name = "m_" + uuid.uuid4().hex[:16]
        self._admin(f'CREATE DATABASE "{name}"')
        try:
            yield self.url(name)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @classmethod
    @contextmanager
    def running(cls, bindir: Path) -> Iterator[Cluster]:
        root = Path(tempfile.mkdtemp(prefix="entrepot-pg-"))
        cluster = cls(bindir, root)
        try:
            cluster.start()
            cluster.migrate_template()
            yield cluster
        finally:
            try:
                cluster.stop()
            finally:
                shutil.rmtree(root, ignore_errors=True)
