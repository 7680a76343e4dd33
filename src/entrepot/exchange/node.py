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

from entrepot._files import private_dir
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
    private_dir(home)
    for name in _DIRS:
        private_dir(home / name)


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
    if not isinstance(url, str):
        raise StorageCorrupt(
            f"{home / _DATABASE_FILE} names no database",
            hint='restore it from the home\'s backup, or write {"url": "<database URL>"}',
        )
    return url.replace(_HOME, str(home))


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

            self._signing_key = SigningKey(self._signing_key)
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
        settings = _own_database(settings)
        for root in ("vaults", "quarantine", "tmp"):
            sweep_temp_files(settings.home / root)
        seed = key_file.read_bytes()
        if len(seed) != _SEED_BYTES:
            raise StorageCorrupt(
                f"{key_file} is not a node key ({len(seed)} bytes, not {_SEED_BYTES})",
                hint="restore the home's keys/ directory from its backup",
            )
        node = cls(settings, seed)
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
