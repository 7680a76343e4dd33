"""entrepot: a federated, privacy-preserving data exchange. Trade the insight, not the data.

The Python API is :func:`connect`, to a server's URL or a node's home; it and
:class:`Settings` are imported on first use, so that the command line starts without
loading the analytical stack, and a command that opens no node without pydantic's models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrepot.errors import EntrepotError

if TYPE_CHECKING:
    from entrepot.client.connection import Connection, connect
    from entrepot.settings import Settings

__version__ = "0.1.0"

__all__ = ["Connection", "EntrepotError", "Settings", "__version__", "connect"]


def __getattr__(name: str) -> Any:
    if name in ("Connection", "connect"):
        from entrepot.client import connection

        return getattr(connection, name)
    if name == "Settings":
        from entrepot.settings import Settings

        return Settings
    raise AttributeError(f"module 'entrepot' has no attribute {name!r}")
