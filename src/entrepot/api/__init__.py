"""The HTTP API (FastAPI) and the client the CLI uses when logged in to a server.

Imports are lazy: the CLI asks :func:`current` on every command and should not pay
for loading FastAPI and every router to learn that it works locally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from entrepot.api.app import create_app
    from entrepot.api.client import Client, current

__all__ = ["Client", "create_app", "current"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from entrepot.api.app import create_app

        return create_app
    if name in ("Client", "current"):
        from entrepot.api import client

        return getattr(client, name)
    raise AttributeError(f"module 'entrepot.api' has no attribute {name!r}")
