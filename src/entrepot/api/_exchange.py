"""The app's one :class:`~entrepot.exchange.Exchange`, for routers and dependencies."""

from __future__ import annotations

from fastapi import Request

from entrepot.exchange import Exchange

__all__ = ["exchange_of"]


def exchange_of(request: Request) -> Exchange:
    """The services of the node the app serves (built once, in ``create_app``)."""
    exchange: Exchange = request.app.state.exchange
    return exchange
