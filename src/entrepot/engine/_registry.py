from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from entrepot.errors import InvalidInput

_ENGINES: dict[str, type[Engine]] = {}


class Engine(ABC):
    """An analytical engine over Parquet views.

    Subclasses declare ``name`` (how settings refer to them) and ``dialect`` (the
    sqlglot dialect their SQL is transpiled to), and register with :func:`register`.
    """

    name: ClassVar[str]
    dialect: ClassVar[str]

    @abstractmethod
    def register_parquet(self, view: str, paths: Sequence[Path]) -> None:
        """Expose Parquet files as a read-only view named ``view``."""

    @abstractmethod
    def columns(self, view: str) -> dict[str, str]:
        """The columns of ``view`` and their SQL types (upper case), without reading
        its rows."""

    @abstractmethod
    def lock(self, allowed_directories: Sequence[Path]) -> None:
        """Forbid reading outside ``allowed_directories`` and any change of setting."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one statement and return its result as an Arrow table."""

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
