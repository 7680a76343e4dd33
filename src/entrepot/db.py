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

from entrepot._files import tighten
from entrepot._metadata import METADATA
from entrepot.errors import Conflict, EntrepotError, StorageCorrupt

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
    """Create the SQLite file ``0600`` (or take from it what is more) before SQLite first
    opens it.

    It holds consumers' SQL, grants and token hashes. SQLite gives its ``-wal`` and
    ``-shm`` files the database file's permissions, so the three stay private
    whatever the umask; a file left lax by an older version is tightened here too,
    and one its owner made read-only stays so.
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
            tighten(name)


# SQLite's words for a database it cannot use, and what each means for the operator.
_LOCKED = ("database is locked", "database table is locked")
_DAMAGED = ("file is not a database", "database disk image is malformed", "disk i/o error")


def _sqlite_trouble(error: DBAPIError, where: str) -> EntrepotError | None:
    """What an SQLite failure that is not the node's own doing means, or None for any
    other (a constraint, a bug)."""
    said = str(error.orig)
    lowered = said.lower()
    if any(words in lowered for words in _LOCKED):
        return Conflict(
            f"{where} is locked: another process has held a write transaction on it "
            "for more than 30 s",
            hint="wait for that process to finish (or stop it), then run this again; "
            "nothing was written",
        )
    if any(words in lowered for words in _DAMAGED):
        return StorageCorrupt(
            f"{where} cannot be read as an SQLite database ({said})",
            hint="the file is damaged or was replaced: stop the node and restore it, with "
            "its -wal file if there is one, from the home's backup",
        )
    if "readonly database" in lowered:
        return EntrepotError(
            f"{where} is read-only ({said})",
            hint="give the node's user write access to it and to its directory (SQLite "
            "writes -wal and -shm files beside it), or mount the home read-write",
        )
    if "unable to open database file" in lowered:
        return EntrepotError(
            f"{where} cannot be opened ({said})",
            hint="it must be a regular file the node's user may read and write, in a "
            "directory it may write to",
        )
    if "database or disk is full" in lowered:
        return EntrepotError(
            f"the disk that holds {where} is full",
            hint="free space on it, then run this again; the transaction was rolled back",
        )
    return None


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
    def _explained(self) -> Iterator[None]:
        """Report an SQLite database that cannot be used (locked, damaged, read-only,
        on a full disk) as what it is, naming the file; any other error as it is."""
        try:
            yield
        except DBAPIError as error:
            trouble = _sqlite_trouble(error, self.where) if self.is_sqlite else None
            if trouble is None:
                raise
            raise trouble from error

    @property
    def where(self) -> str:
        """The database as a message names it: an SQLite file's path, else its URL."""
        database = make_url(self.url).database if self.is_sqlite else None
        return database or shown(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; nothing it does is committed (closing it rolls back)."""
        with self._explained(), self._sessionmakers()[0]() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads of Core tables, without the ORM; nothing it does is
        committed (closing it rolls back)."""
        with self._explained(), self.engine.connect() as connection:
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
        with self._explained(), makers[1 if synced else 2]() as session, session.begin():
            if not synced and not self.is_sqlite:
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest migration; one read when it is there already.

        Alembic's own check loads it and every model (about 0.2 s of CPU per command),
        so the stored revision is compared with the migrations' heads first. A schema
        newer than these migrations is refused, untouched; so is one whose tables do not
        match its revision, after the failed migration rolls back.
        """
        stored = self._stored_revisions()
        if stored == _head_revisions():
            return
        self._refuse_unknown(stored)
        from alembic import command

        try:
            with self._explained(), self.engine.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except DBAPIError as error:
            raise self._failed_migration(stored, error) from error

    def _refuse_unknown(self, stored: frozenset[str]) -> None:
        unknown = stored - _all_revisions()
        if unknown:
            raise Conflict(
                f"the schema of {self.where} is at revision {', '.join(sorted(unknown))}, "
                f"newer than this version of entrepot knows (newest {schema_head()})",
                hint="run the version of entrepot that last opened this node (or a newer "
                "one); this version changed nothing in the database",
            )

    def _failed_migration(self, stored: frozenset[str], error: DBAPIError) -> StorageCorrupt:
        revision = ",".join(sorted(stored)) or "none"
        return StorageCorrupt(
            f"the schema of {self.where} cannot be migrated from revision {revision} to "
            f"{schema_head()}: {error.orig}",
            hint="its tables do not match the revision it records; the migration was rolled "
            "back: restore the database from the home's backup",
        )

    def revision(self) -> str | None:
        """The schema's revision in Alembic's version table, None before the first
        migration (several, were there ever, joined by commas)."""
        return ",".join(sorted(self._stored_revisions())) or None

    def _stored_revisions(self) -> frozenset[str]:
        """The revisions in Alembic's version table (none before the first migration)."""
        try:
            with self._explained(), self.engine.connect() as connection:
                rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                return frozenset(str(row[0]) for row in rows)
        except DBAPIError as error:
            if _no_such_table(error):
                return frozenset()
            raise

    def dispose(self) -> None:
        self.engine.dispose()


def schema_head() -> str:
    """The newest migration's revision, read from the migration files' headers as
    :meth:`Database.upgrade` reads them (several heads, were there ever, joined by commas)."""
    return ",".join(sorted(_head_revisions()))


def _no_such_table(error: DBAPIError) -> bool:
    """Whether ``error`` says a table is missing (SQLite's words, PostgreSQL's state)."""
    return (
        "no such table" in str(error.orig).lower()
        or getattr(error.orig, "sqlstate", None) == "42P01"
    )


def known_revision(revision: str | None) -> bool:
    """Whether ``revision`` (several joined by commas) is one of this version's migrations."""
    return revision is None or set(revision.split(",")) <= _all_revisions()


@cache
def _head_revisions() -> frozenset[str]:
    """The revisions no migration revises."""
    revises = _revisions()
    revised = {parent for parents in revises.values() for parent in parents}
    return frozenset(revises) - revised


@cache
def _all_revisions() -> frozenset[str]:
    return frozenset(_revisions())


@cache
def _revisions() -> dict[str, tuple[str, ...]]:
    """Each migration's revision and the revisions it follows, read from the files' headers.

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
    return revises


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
