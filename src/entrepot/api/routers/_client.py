"""The in-process client a route answers through, acting as the request's account.

A route adds what only HTTP has (authentication, role gates, paging, limits) and
takes its body from :class:`~entrepot.client.local.LocalClient`, the very code the
local CLI and ``entrepot.connect(home)`` run: one implementation per operation.
"""

from __future__ import annotations

from fastapi import Request

from entrepot.api._exchange import exchange_of
from entrepot.client.local import LocalClient
from entrepot.exchange.accounts import Actor

__all__ = ["client_of"]


def client_of(request: Request, actor: Actor) -> LocalClient:
    """The node's services as ``actor`` (the token's account) calls them."""
    return LocalClient(exchange_of(request), actor)
