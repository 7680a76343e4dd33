"""The one client interface to a node, in-process or over HTTP.

:class:`Client` names every operation; :class:`HttpClient` calls a server as a
token's account, :class:`LocalClient` calls an opened node's services as one
organization, and both return the HTTP API's JSON bodies. The login helpers keep the
server `entrepot login` stored. ``LocalClient`` is imported on first use: a client of
a server never loads the analytical stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrepot.client.login import Remote, current, forget, load_remote, require, save_remote
from entrepot.client.protocol import Client, Standards

if TYPE_CHECKING:
    from entrepot.client.http import HttpClient
    from entrepot.client.local import LocalClient

__all__ = [
    "Client",
    "HttpClient",
    "LocalClient",
    "Remote",
    "Standards",
    "current",
    "forget",
    "load_remote",
    "require",
    "save_remote",
]


def __getattr__(name: str) -> Any:
    if name == "LocalClient":
        from entrepot.client.local import LocalClient

        return LocalClient
    if name == "HttpClient":
        # httpx loads only for a server: a command on the local node starts without it.
        from entrepot.client.http import HttpClient

        return HttpClient
    raise AttributeError(f"module 'entrepot.client' has no attribute {name!r}")
