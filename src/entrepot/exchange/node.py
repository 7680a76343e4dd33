"""A node's home: its directories, its metadata database and its Ed25519 identity.

::

    <home>/node.db                                    metadata (SQLite by default)
    <home>/database.json                              which metadata database it uses
    <home>/vaults/<provider>/<dataset>/<version>.parquet
    <home>/quarantine/                                rejected rows with their reasons
    <home>/log/                                       the transparency log
    <home>/keys/node.key, node.pub                    the node's Ed25519 signing key
    <home>/tmp/                                       working folders of running publishes

Everything under a home is private to its owner whatever the umask: directories
``0700``, files ``0600`` (see :mod:`entrepot._files`). Opening a node tightens an
older home made under a lax umask, and deletes the spool files and working folders
that killed processes left (never those of a process still running).

A home remembers its metadata database (``database.json``: the URL without its
password). Opened with another one, say a stray ``ENTREPOT_DB``, it refuses and names
both, rather than show an empty catalog beside a log full of entries; opened with none,
it uses the recorded one. ``entrepot db move`` is the one way to change it. A SQLite
file inside the home is recorded relative to it, so a home can be moved or restored
elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from entrepot._files import private_dir, tighten
from entrepot.db import Database, same_database, shown
from entrepot.errors import Conflict, InvalidInput, NotFound, StorageCorrupt
from entrepot.exchange._outbox_tables import has_pending
from entrepot.settings import Settings
from entrepot.vault._storage import sweep_temp_files, temp_path

if TYPE_CHECKING:
    from nacl.signing import SigningKey, VerifyKey

    from entrepot.engine import Engine
    from entrepot.exchange.outbox import Outbox
    from entrepot.transparency import TransparencyLog

__all__ = ["Node", "record_database", "recorded_database"]

_DIRS = ("vaults", "quarantine", "log", "keys", "tmp")
_DATABASE_FILE = "database.json"
_HOME = "{home}"
# An Ed25519 seed, as ``keys/node.key`` holds it (RFC 8032 §5.1.5).
_SEED_BYTES = 32


def _private_home(home: Path) -> None:
    """Create (or tighten) the home and its directories, each ``0700``."""
    for name in _DIRS:
        _refuse_non_directory(home / name)
    private_dir(home)
    for name in _DIRS:
        private_dir(home / name)


def _refuse_non_directory(path: Path) -> None:
    """Refuse a home's directory that something else has taken the place of."""
    if path.is_dir() or not os.path.lexists(path):
        return
    raise StorageCorrupt(
        f"{path} is not a directory",
        hint=f"move it aside and restore {path.name}/ from the home's backup",
    )


def _home_to_make(home: Path) -> None:
    """Refuse to make a node's home at a path that is neither a directory nor free."""
    if home.is_dir() or not os.path.lexists(home):
        return
    if home.is_symlink() and not home.exists():
        raise InvalidInput(
            f"{home} is a symbolic link to {os.readlink(home)}, which does not exist",
            hint="create the directory it points to first, or choose another --home",
        )
    raise InvalidInput(
        f"{home} is a file, not a directory",
        hint="choose a directory for the node's home (a missing one is created)",
    )


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite database URL, or None for any other database."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def _require_database_file(url: str) -> None:
    """Refuse a node whose SQLite file is gone or empty, rather than migrate a new one.

    A new, empty database would show an empty node beside a log and vaults full of what
    the lost one recorded, and take new grants and spends apart from them. A file that
    is empty while its ``-wal`` file holds its pages (a process killed before SQLite
    folded them in) is whole.
    """
    path = _sqlite_file(url)
    if path is None:
        return
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        raise _lost_database(path, "is missing") from None
    except OSError:
        return  # SQLite names what is wrong with it when it opens the file.
    if empty and _size(Path(f"{path}-wal")) == 0:
        raise _lost_database(path, "is empty")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _lost_database(path: Path, what: str) -> StorageCorrupt:
    return StorageCorrupt(
        f"the node's metadata database {path} {what}: its accounts, grants, budgets and "
        "versions are not there",
        hint="restore it (with its -wal file, if there is one) from the home's backup; "
        "entrepot makes no new database in a node that has one, as the log and vaults "
        "would no longer match it",
    )


def _read_seed(key_file: Path) -> bytes:
    """The node's Ed25519 seed from its key file, which is left ``0600`` or tighter."""
    try:
        seed = key_file.read_bytes()
        tighten(key_file)
    except OSError as error:
        raise StorageCorrupt(
            f"{key_file} cannot be read ({error.strerror})",
            hint="it must be the node's key, a file the node's user can read: restore "
            "the home's keys/ directory from its backup",
        ) from None
    if len(seed) != _SEED_BYTES:
        raise StorageCorrupt(
            f"{key_file} is not a node key ({len(seed)} bytes, not {_SEED_BYTES})",
            hint="restore the home's keys/ directory from its backup",
        )
    return seed


def _check_public_key(key: SigningKey, key_file: Path) -> None:
    """Refuse a key that is not the one ``node.pub`` beside it names (another node's)."""
    public_file = key_file.with_name("node.pub")
    try:
        recorded = public_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return
    except (OSError, ValueError) as error:
        raise StorageCorrupt(
            f"{public_file} cannot be read ({error})",
            hint="restore the home's keys/ directory from its backup",
        ) from None
    if recorded != bytes(key.verify_key).hex():
        raise StorageCorrupt(
            f"{key_file} is not the key {public_file} names: the node's key was replaced "
            "(by another node's?)",
            hint="restore the home's keys/ directory from its backup; a head signed with "
            "another key would not verify against this node's log",
        )


def recorded_database(home: Path) -> str | None:
    """The metadata database URL (without password) the home records, if it has one."""
    try:
        recorded = json.loads((home / _DATABASE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageCorrupt(
            f"{home / _DATABASE_FILE} cannot be read: {exc}",
            hint='restore it from the home\'s backup, or write {"url": "<database URL>"}',
        ) from exc
    url = recorded.get("url") if isinstance(recorded, dict) else None
    if not isinstance(url, str) or not _is_url(url):
        raise StorageCorrupt(
            f"{home / _DATABASE_FILE} names no database",
            hint='restore it from the home\'s backup, or write {"url": "<database URL>"}',
        )
    return url.replace(_HOME, str(home))


def _is_url(text: str) -> bool:
    try:
        make_url(text)
    except ArgumentError:
        return False
    return True


def record_database(home: Path, url: str) -> None:
    """Write ``url`` (its password left out) as the home's metadata database, atomically."""
    text = shown(url)
    prefix = "sqlite:///"
    if text.startswith(prefix):
        path = Path(text.removeprefix(prefix)).resolve()
        with contextlib.suppress(ValueError):
            text = f"{prefix}{_HOME}/{path.relative_to(home.resolve())}"
    temp = home / f".{_DATABASE_FILE}.{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps({"url": text}) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, home / _DATABASE_FILE)


def _own_database(settings: Settings) -> Settings:
    """``settings`` on the home's recorded database: the one they name, if it is that one
    (a URL with a password, say), else the recorded URL when they name none."""
    recorded = recorded_database(settings.home)
    if recorded is None:
        # A home made before homes recorded their database adopts the one it is opened with.
        record_database(settings.home, settings.db_url)
        return settings
    if same_database(recorded, settings.db_url):
        return settings
    if settings.db is None:
        # Moved (`entrepot db move`): a password comes from libpq (PGPASSWORD, ~/.pgpass).
        return settings.model_copy(update={"db": recorded})
    raise InvalidInput(
        f"the node at {settings.home} uses the database {recorded}, not {shown(settings.db_url)}",
        hint="open it without --db / ENTREPOT_DB (or with its own URL); to change its "
        "database, use `entrepot db move URL`",
        setting="db",
    )


class Node:
    """An opened node. Create one with :meth:`init`, open it with :meth:`open`."""

    def __init__(self, settings: Settings, signing_key: SigningKey | bytes) -> None:
        """``signing_key`` is the node's key, or the seed its key file holds: a seed is
        made a key on first use (PyNaCl costs a command that signs nothing about 30 M
        instructions, a sixth of listing the catalog's own work)."""
        self.settings = settings
        self.home = settings.home
        self._signing_key = signing_key
        self.db = Database(settings.db_url)
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()

    @property
    def signing_key(self) -> SigningKey:
        """The node's Ed25519 signing key."""
        if isinstance(self._signing_key, bytes):
            from nacl.signing import SigningKey

            key = SigningKey(self._signing_key)
            _check_public_key(key, self.path("keys", "node.key"))
            self._signing_key = key
        return self._signing_key

    @property
    def verify_key(self) -> VerifyKey:
        return self.signing_key.verify_key

    def path(self, *parts: str) -> Path:
        return self.home.joinpath(*parts)

    @classmethod
    def init(cls, settings: Settings) -> Node:
        """Create a new node at ``settings.home``; refuse to touch an existing one."""
        home = settings.home
        _home_to_make(home)
        key_file = home / "keys" / "node.key"
        if key_file.exists():
            raise Conflict(
                f"{home} already holds a node",
                hint="open it with --home, or choose an empty directory for a new node",
            )
        from nacl.signing import SigningKey

        _private_home(home)
        key = SigningKey.generate()
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(bytes(key))
            out.flush()
            os.fsync(out.fileno())
        fd = os.open(home / "keys" / "node.pub", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(bytes(key.verify_key).hex() + "\n")
        node = cls(settings, key)
        node.db.upgrade()
        record_database(home, settings.db_url)
        return node

    @classmethod
    def open(cls, settings: Settings) -> Node:
        """Open the node at ``settings.home`` and bring its schema up to date."""
        key_file = settings.home / "keys" / "node.key"
        if not key_file.exists():
            raise NotFound(
                f"no entrepot node at {settings.home}",
                hint=f"create one with `entrepot init --home {settings.home}`, "
                "or point --home / ENTREPOT_HOME at an existing node",
            )
        _private_home(settings.home)
        recorded = (settings.home / _DATABASE_FILE).exists()
        settings = _own_database(settings)
        if recorded:
            _require_database_file(settings.db_url)
        for root in ("vaults", "quarantine", "tmp"):
            sweep_temp_files(settings.home / root)
        node = cls(settings, _read_seed(key_file))
        node.db.upgrade()
        if has_pending(node.db):
            # The node must open even if its log is damaged, so that `entrepot audit
            # repair` can mend it; the entries stay owed and `audit verify` names them.
            with contextlib.suppress(StorageCorrupt):
                node.outbox.replay()
        return node

    @property
    def engine(self) -> Engine:
        """The node's analytical engine, opened from the settings on first use and held
        until :meth:`close`; each query runs in a session of its own.

        Opening one costs about 17 ms of CPU (DuckDB), a session microseconds. The
        engine reads only the vaults, and spills to a private working folder under
        ``<home>/tmp`` that the next sweep deletes if the process is killed.
        """
        # DuckDB and sqlglot load here, not when a command that reads metadata opens the node.
        from entrepot.engine import EngineOptions, get

        with self._engine_lock:
            if self._engine is None:
                self._engine = get(self.settings.engine)(
                    EngineOptions(
                        allowed_directories=(self.path("vaults"),),
                        temp_directory=private_dir(temp_path(self.path("tmp"), "")),
                        threads=self.settings.engine_threads,
                        memory_limit=self.settings.engine_memory_limit,
                        timeout_s=self.settings.query_timeout_s,
                        cluster=self.settings.spark_remote or self.settings.spark_master,
                    )
                )
            return self._engine

    @cached_property
    def log(self) -> TransparencyLog:
        """The transparency log in ``<home>/log/``, opened on first use."""
        # Loaded here: a command that reads metadata neither opens nor loads the log. One
        # that reads the log makes no key and loads no ORM (`entrepot audit log` on the
        # demo home: 1,669 M instructions, 1,997 M with the key, the outbox and the verifier).
        from entrepot.transparency import TransparencyLog

        return TransparencyLog(
            self.path("log"),
            lambda: self.signing_key,
            head_every_entries=self.settings.log_head_every_entries,
            head_every_s=self.settings.log_head_every_s,
            on_head=self._remember_log,
        )

    def _remember_log(self, log: TransparencyLog) -> None:
        # The outbox's mapped classes (the ORM) load when a head is signed.
        from entrepot.exchange.outbox import remember_log

        remember_log(self.db, log)

    @cached_property
    def outbox(self) -> Outbox:
        """Log entries owed by committed state changes (see :mod:`entrepot.exchange.outbox`)."""
        from entrepot.exchange.outbox import Outbox

        return Outbox(self.db, self.log, fault_point=self.settings.fault_point)

    def close(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.close()
                if self._engine.options.temp_directory is not None:
                    shutil.rmtree(self._engine.options.temp_directory, ignore_errors=True)
                self._engine = None
        if "log" in self.__dict__:
            self.log.close()
        self.db.dispose()
