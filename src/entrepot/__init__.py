"""entrepot: a federated, privacy-preserving data exchange. Trade the insight, not the data.

The Python API is :func:`connect`, to a server's URL or a node's home; it is imported
on first use so that the command line starts without loading the analytical stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrepot.errors import EntrepotError
from entrepot.settings import Settings

if TYPE_CHECKING:
    from entrepot.client.connection import Connection, connect

__version__ = "0.1.0"

__all__ = ["Connection", "EntrepotError", "Settings", "__version__", "connect"]


def __getattr__(name: str) -> Any:
    if name in ("Connection", "connect"):
        from entrepot.client import connection

        return getattr(connection, name)
    raise AttributeError(f"module 'entrepot' has no attribute {name!r}")
