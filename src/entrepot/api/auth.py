"""Who is calling, and what they may touch.

``Authorization: Bearer <token>`` is verified by the accounts module (Argon2id,
constant-time; only that check is cached, while revocation and expiry are read from
the database on every request, so a token revoked through one worker is refused by
all of them at once). A check costs 64 MiB and tens of milliseconds, so it runs only
when :class:`~entrepot.api.limits.AuthGuard` admits it: failures are limited per
token id and per client address, and checks at once per worker. The result is
an :class:`~entrepot.exchange.accounts.Actor`, which every router passes to the
domain layer as the acting party. The domain layer scopes what an actor sees; this
module adds the role gate in front of it.

A refused cross-tenant read or write answers 404, never 403, wherever a 403 would
reveal that the object exists; 403 is kept for refusals that reveal nothing (a role
that may never call an endpoint, a contract clause on the caller's own grant).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from entrepot._text import with_article
from entrepot.api._exchange import exchange_of
from entrepot.api.limits import AuthGuard
from entrepot.errors import Forbidden, Unauthorized
from entrepot.exchange.accounts import Accounts, Actor, Role, token_id_of

__all__ = [
    "AnyActor",
    "Auditor",
    "Consumer",
    "Operator",
    "Provider",
    "accounts_of",
    "checked_first",
    "current_actor",
    "require_role",
]

# `auto_error=False`: a missing header is answered by our own 401 in the one error shape.
_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `entrepot account create` or `entrepot account token`.",
)


def accounts_of(request: Request) -> Accounts:
    return exchange_of(request).accounts


async def current_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The actor behind the bearer token; 401 without one or with a bad one, 429 when
    the token or the caller's address has failed too often. Found once per request:
    a route of :func:`checked_first` finds it before its dependencies ask again."""
    known = getattr(request.state, "actor", None)
    if isinstance(known, Actor):
        return known
    request.state.actor = actor = await _authenticated(request, credentials)
    return actor


async def _authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "this endpoint needs an API token",
            hint="send `Authorization: Bearer <token>`; "
            "an operator creates one with `entrepot account create`",
        )
    token = credentials.credentials
    accounts = accounts_of(request)
    token_id = token_id_of(token)
    if token_id is None:
        raise Unauthorized(
            "the API token is malformed",
            hint="a token looks like ent_<12 hex digits>_<43 characters>; copy it whole",
        )
    if accounts.is_cached(token):
        # A primary-key read, for revocation, and no check.
        found = await anyio.to_thread.run_sync(accounts.recall, token)
        if isinstance(found, Actor):
            return found
    guard: AuthGuard = request.app.state.auth_guard
    address = request.client.host if request.client else "unknown"

    async def verify() -> Actor:
        # Admission is decided on the event loop before any read: a refused guess costs
        # neither a thread, nor a database read, nor the memory of a check.
        async with guard.attempt(token_id, address):
            found = await anyio.to_thread.run_sync(accounts.recall, token)
            if isinstance(found, Actor):
                return found
            return await guard.check(accounts.verify, found, token)

    return await guard.once(hashlib.sha256(token.encode()).hexdigest(), verify)


def require_role(*roles: Role) -> Callable[[Actor], Actor]:
    """A dependency: the caller, if its role is one of ``roles``; else 403."""
    allowed = ", ".join(roles)

    def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in roles:
            raise Forbidden(
                f"{with_article(actor.role)} account may not call this endpoint",
                hint=f"use an account with role: {allowed}",
                role=actor.role,
            )
        return actor

    return dependency


def checked_first(*roles: Role) -> type[APIRoute]:
    """A route class whose caller is authenticated, and held to ``roles``, before the
    request's body is read. FastAPI reads a form before it resolves a route's
    dependencies: without this, a stranger's upload would be taken in whole (up to
    ``max_upload_bytes``) before its 401."""
    gate = require_role(*roles)

    class CheckedFirst(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def checked(request: Request) -> Response:
                gate(await current_actor(request, await _bearer(request)))
                return await handler(request)

            return checked

    return CheckedFirst


AnyActor = Annotated[Actor, Depends(current_actor)]
Operator = Annotated[Actor, Depends(require_role(Role.OPERATOR))]
Provider = Annotated[Actor, Depends(require_role(Role.PROVIDER))]
Consumer = Annotated[Actor, Depends(require_role(Role.CONSUMER))]
Auditor = Annotated[Actor, Depends(require_role(Role.AUDITOR, Role.OPERATOR))]
