"""The metadata database: one SQLAlchemy code path for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` (an acknowledged write survives a
power cut) and every write transaction starts with ``BEGIN IMMEDIATE`` so that two
writers never both read a budget and then both spend it. PostgreSQL runs at READ
COMMITTED, where a conditional ``UPDATE ... WHERE remaining >= :cost`` re-checks its
predicate after waiting for a row lock, which gives the same guarantee.

The schema is owned by Alembic migrations in ``entrepot/migrations``; models live
with the package that owns them and share :data:`METADATA`, through :class:`Base`.

SQLAlchemy's ORM costs a command about 0.1 s of CPU to import, map and configure, so
this module loads it only when a session or :class:`Base` is first asked for: a
command that reads a few tables as Core tables (the catalog's listing) runs
without it.
"""

from __future__ import annotations

import ast
import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    create_engine,
    event,
    func,
    make_url,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import text

from entrepot._metadata import METADATA

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from entrepot._orm import Base

__all__ = [
    "METADATA",
    "MODEL_MODULES",
    "Base",
    "Database",
    "count_rows",
    "same_database",
    "schema_head",
    "shown",
]

# Modules that declare tables; imported before migrations are compared with models.
MODEL_MODULES: tuple[str, ...] = (
    "entrepot.organizations",
    "entrepot.vault.models",
    "entrepot.exchange.accounts",
    "entrepot.exchange.contracts",
    "entrepot.privacy._ledger_models",
    "entrepot.exchange._policy_models",
    "entrepot.exchange.outbox",
    "entrepot.exchange.openings",
    "entrepot.exchange.idempotency",
    "entrepot.exchange._release_tables",
    "entrepot.federation.models",
)

_MIGRATIONS = Path(__file__).with_name("migrations")


def __getattr__(name: str) -> Any:
    # The declarative base loads the ORM: only for a module that maps a class on it.
    if name == "Base":
        from entrepot._orm import Base

        return Base
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite would defer it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    options = conn.get_execution_options()
    # SQLite refuses to change the safety level inside a transaction: it is set before
    # BEGIN, and set back on the connection's next transaction.
    unsynced = bool(options.get("sqlite_unsynced"))
    info = conn.connection.info
    if info.get("unsynced", False) != unsynced:
        conn.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if unsynced else 'FULL'}")
        info["unsynced"] = unsynced
    conn.exec_driver_sql(options.get("sqlite_begin", "BEGIN"))


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file ``0600`` (or make it so) before SQLite first opens it.

    It holds consumers' SQL, grants and token hashes. SQLite gives its ``-wal`` and
    ``-shm`` files the database file's permissions, so the three stay private
    whatever the umask; a file left lax by an older version is tightened here too.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    # A missing directory is left for SQLite to report, as it always has.
    with suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        # Another user's database (read by an auditor, say) is theirs to keep as it is.
        with suppress(FileNotFoundError, PermissionError):
            os.chmod(name, 0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def shown(url: str) -> str:
    """``url`` as it may be written down or printed: no password, no options (which may
    hold one, or a key file's path)."""
    parsed = make_url(url)
    bare = parsed.difference_update_query(parsed.query)._replace(password=None)
    return bare.render_as_string(hide_password=False)


def _identity(url: str) -> tuple[Any, ...]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            database = str(Path(database).resolve())
        return (backend, database)
    return (backend, parsed.host, parsed.port, parsed.database, parsed.username)


def same_database(a: str, b: str) -> bool:
    """Whether two URLs name one database: same backend, server, database and user,
    whatever the driver, password or options (``postgresql://`` is the psycopg driver's)."""
    return _identity(a) == _identity(b)


class Database:
    """A node's metadata store: short read and write transactions, and migrations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions: (
            tuple[sessionmaker[Session], sessionmaker[Session], sessionmaker[Session]] | None
        ) = None

    def _sessionmakers(
        self,
    ) -> tuple[sessionmaker[Session], sessionmaker[Session], sessionmaker[Session]]:
        """The reader's, the writer's and the unsynced writer's session factories, made on
        first use."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            writer = (
                self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                if self.is_sqlite
                else self.engine
            )
            unsynced = writer.execution_options(sqlite_unsynced=True) if self.is_sqlite else writer
            self._sessions = (
                sessionmaker(self.engine, expire_on_commit=False),
                sessionmaker(writer, expire_on_commit=False),
                sessionmaker(unsynced, expire_on_commit=False),
            )
        return self._sessions

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; nothing it does is committed (closing it rolls back)."""
        with self._sessionmakers()[0]() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads of Core tables, without the ORM; nothing it does is
        committed (closing it rolls back)."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def write(self, *, synced: bool = True) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on error.

        ``synced=False`` commits without waiting for the disk (SQLite ``synchronous=NORMAL``
        in WAL mode, PostgreSQL ``synchronous_commit off``): a crash of the process loses
        nothing, and the commit is on disk once any later synced commit is, since both
        logs are replayed in order; a power cut before that may lose it. For writes whose
        effects are themselves synced commits that come after (a request's nonce).
        """
        makers = self._sessionmakers()
        with makers[1 if synced else 2]() as session, session.begin():
            if not synced and not self.is_sqlite:
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest migration; one read when it is there already.

        Alembic's own check loads it and every model (about 0.2 s of CPU per command),
        so the stored revision is compared with the migrations' heads first.
        """
        if self._stored_revisions() == _head_revisions():
            return
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The schema's revision in Alembic's version table, None before the first
        migration (several, were there ever, joined by commas)."""
        return ",".join(sorted(self._stored_revisions())) or None

    def _stored_revisions(self) -> frozenset[str]:
        """The revisions in Alembic's version table (none before the first migration)."""
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                return frozenset(str(row[0]) for row in rows)
        except DBAPIError:
            return frozenset()

    def dispose(self) -> None:
        self.engine.dispose()


def schema_head() -> str:
    """The newest migration's revision, read from the migration files' headers as
    :meth:`Database.upgrade` reads them (several heads, were there ever, joined by commas)."""
    return ",".join(sorted(_head_revisions()))


@cache
def _head_revisions() -> frozenset[str]:
    """The revisions no migration revises, read from the migration files' headers.

    Each file is scanned line by line for its two assignments, without a regular
    expression or the parser for a plain string or ``None``: read on every open, the
    regular expressions and ``ast`` took most of this check's 2 ms.
    """
    revises: dict[str, tuple[str, ...]] = {}
    with os.scandir(_MIGRATIONS / "versions") as entries:
        for entry in entries:
            if not entry.name.endswith(".py") or not entry.is_file():
                continue
            header = _revision_header(Path(entry.path).read_text(encoding="utf-8"))
            if header is not None:
                revises[header[0]] = header[1]
    revised = {parent for parents in revises.values() for parent in parents}
    return frozenset(revises) - revised


def _revision_header(source: str) -> tuple[str, tuple[str, ...]] | None:
    """A migration's revision and the revisions it follows, or None if it names none."""
    found: dict[str, Any] = {}
    for line in source.splitlines():
        name, equals, value = line.partition("=")
        name = name.rstrip()
        if equals and name in ("revision", "down_revision") and name not in found:
            found[name] = _literal(value.split("#")[0].strip())
            if len(found) == 2:
                break
    if len(found) < 2:
        return None
    parent = found["down_revision"]
    parents = () if parent is None else (parent,) if isinstance(parent, str) else parent
    return str(found["revision"]), tuple(parents)


def _literal(text: str) -> Any:
    if text == "None":
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and "\\" not in text:
        return text[1:-1]
    return ast.literal_eval(text)


def count_rows(session: Session | Connection, query: Select[Any]) -> int:
    """How many rows ``query`` selects, counted by the database (its order and window dropped)."""
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    return int(session.scalar(counted) or 0)


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def import_models() -> None:
    """Import every module that declares tables, so :data:`METADATA` is complete."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
