"""The HTTP API (FastAPI); its client is :mod:`entrepot.client`.

Imports are lazy: importing the package does not load FastAPI and every router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from entrepot.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from entrepot.api.app import create_app

        return create_app
    raise AttributeError(f"module 'entrepot.api' has no attribute {name!r}")
