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

A token's scope is held here, and only here: an account token (``full``) is taken
everywhere, a sharing token (a share profile's) only by the Delta Sharing routes,
which ask for their caller with :func:`sharing_actor`. Everywhere else, the API, the
portal's sign-in and its pages, :func:`current_actor` refuses it with 403 and the rule
``token_scope``, saying nothing of its account.

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
from entrepot.exchange.accounts import Accounts, Actor, Authenticated, Role, Scope, token_id_of
from entrepot.schemas.releases import SHARING_PREFIX

__all__ = [
    "AnyActor",
    "Auditor",
    "Consumer",
    "Operator",
    "Provider",
    "SharingConsumer",
    "accounts_of",
    "checked_first",
    "current_actor",
    "require_role",
    "sharing_actor",
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
    """The actor behind the bearer token, an account token; 401 without one or with a
    bad one, 403 for a sharing token, 429 when the token or the caller's address has
    failed too often."""
    return _within(await _token_of(request, credentials), Scope.FULL)


async def sharing_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The actor behind the bearer token, an account token or a sharing token: the
    caller of a Delta Sharing route; refused as :func:`current_actor` refuses."""
    return _within(await _token_of(request, credentials), Scope.SHARING)


def _within(found: Authenticated, scope: Scope) -> Actor:
    """The token's actor, on a route that takes tokens of ``scope``: an account token
    is taken on every route, another only on those of its scope. Else 403, naming the
    rule and nothing of the account."""
    if found.scope not in (Scope.FULL, scope):
        raise Forbidden(
            "this token is a sharing token, from a Delta Sharing profile: it reads shared "
            f"tables through the routes under {SHARING_PREFIX}, and nothing else",
            hint="use an account token (`entrepot account token ACCOUNT`)",
            rule="token_scope",
        )
    return found.actor


async def _token_of(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Authenticated:
    """Whom the bearer token stands for, and its scope. Found once per request: a route
    of :func:`checked_first` finds it before its dependencies ask again."""
    known = getattr(request.state, "token", None)
    if isinstance(known, Authenticated):
        return known
    request.state.token = found = await _authenticated(request, credentials)
    return found


async def _authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Authenticated:
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
        if isinstance(found, Authenticated):
            return found
    guard: AuthGuard = request.app.state.auth_guard
    address = request.client.host if request.client else "unknown"

    async def verify() -> Authenticated:
        # Admission is decided on the event loop before any read: a refused guess costs
        # neither a thread, nor a database read, nor the memory of a check.
        async with guard.attempt(token_id, address):
            found = await anyio.to_thread.run_sync(accounts.recall, token)
            if isinstance(found, Authenticated):
                return found
            return await guard.check(accounts.verify, found, token)

    return await guard.once(hashlib.sha256(token.encode()).hexdigest(), verify)


def require_role(*roles: Role) -> Callable[[Actor], Actor]:
    """A dependency: the caller, if its role is one of ``roles``; else 403."""

    def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        return _in_role(actor, roles)

    return dependency


def _sharing_consumer(actor: Annotated[Actor, Depends(sharing_actor)]) -> Actor:
    """The caller of a Delta Sharing route: a consumer, with an account or a sharing token."""
    return _in_role(actor, (Role.CONSUMER,))


def _in_role(actor: Actor, roles: tuple[Role, ...]) -> Actor:
    if actor.role not in roles:
        raise Forbidden(
            f"{with_article(actor.role)} account may not call this endpoint",
            hint=f"use an account with role: {', '.join(roles)}",
            role=actor.role,
        )
    return actor


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
SharingConsumer = Annotated[Actor, Depends(_sharing_consumer)]
Auditor = Annotated[Actor, Depends(require_role(Role.AUDITOR, Role.OPERATOR))]
