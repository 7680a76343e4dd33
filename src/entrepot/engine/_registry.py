from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from entrepot.errors import InvalidInput

_ENGINES: dict[str, type[Engine]] = {}


@dataclass(frozen=True)
class EngineOptions:
    """How an engine is opened: its sandbox and its limits (a node takes them from its
    settings)."""

    # The only directories a session may read; nothing outside them is readable,
    # writable or loadable once the engine is open.
    allowed_directories: tuple[Path, ...]
    # Where the engine may spill beyond its memory limit (private to the node);
    # None keeps everything in memory.
    temp_directory: Path | None = None
    threads: int = 2
    memory_limit: str = "4GB"
    timeout_s: float = 60.0
    # Where a distributed engine runs (Spark: a master URL such as local[2] or
    # spark://host:7077, or a Spark Connect URL sc://host:15002); None: in-process.
    cluster: str | None = None


class Session(ABC):
    """One query's workspace in an engine: the views it registers and the statements it
    runs. Other sessions never see its views, and they are dropped when it closes."""

    dialect: ClassVar[str]

    @abstractmethod
    def register_parquet(self, view: str, paths: Sequence[Path]) -> None:
        """Expose Parquet files (inside the allowed directories) as a read-only view."""

    @abstractmethod
    def register_arrow(self, view: str, table: pa.Table) -> None:
        """Expose an Arrow table this process holds (a private join's matched rows) as a
        read-only view of this session alone."""

    @abstractmethod
    def columns(self, view: str) -> dict[str, str]:
        """The columns of ``view`` and their SQL types (upper case), without reading
        its rows."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one query and return its result as an Arrow table; any other statement
        (or a file access the sandbox refuses) raises :class:`Forbidden`."""

    @abstractmethod
    def close(self) -> None:
        """Drop everything the session made."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Engine(ABC):
    """A long-lived analytical backend, opened once and sandboxed from the start, that
    opens a :class:`Session` per query; sessions may run concurrently from threads.

    Subclasses declare ``name`` (how settings refer to them) and ``dialect`` (the
    sqlglot dialect their SQL is transpiled to), and register with :func:`register`.
    """

    name: ClassVar[str]
    dialect: ClassVar[str]

    def __init__(self, options: EngineOptions) -> None:
        self.options = options

    @abstractmethod
    def session(self) -> Session:
        """A new session, locked to the allowed directories; close it (or use it as a
        context manager) when the query is done."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register(cls: type[Engine]) -> type[Engine]:
    """Class decorator: make an engine available by its ``name``."""
    _ENGINES[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(_ENGINES)


def get(name: str) -> type[Engine]:
    """The engine class registered as ``name``."""
    try:
        return _ENGINES[name]
    except KeyError:
        raise InvalidInput(
            f"unknown engine {name!r}",
            hint=f"known engines: {', '.join(names())}; set ENTREPOT_ENGINE to one of them",
        ) from None
