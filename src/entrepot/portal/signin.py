"""Sign in with an API token, sign out: the session's whole life.

Signing in opens a session token on the server and signing out revokes it (see
:mod:`entrepot.portal.session`), so a sign-out ends the session wherever its cookie
was copied to; so does signing in again over it, in the same browser.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from entrepot.api.auth import accounts_of, current_actor
from entrepot.errors import EntrepotError, Unauthorized
from entrepot.portal._web import Visit, error_body, form_text, local_path, visit
from entrepot.portal.session import LIFETIME, Session

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]


@router.get("/signin")
def signin_page(here: Visitor, next: str | None = None) -> Response:
    return here.render("signin.html", next=local_path(next))


@router.post("/signin")
async def signin(request: Request, here: Visitor) -> Response:
    form = await request.form()
    target = local_path(form_text(form, "next"))
    if not here.csrf_ok(form):
        return here.refused_csrf()
    token = form_text(form, "token")
    try:
        if not token:
            raise Unauthorized(
                "paste your API token to sign in",
                hint="an operator prints one with `entrepot account create` or "
                "`entrepot account token`",
            )
        actor = await current_actor(
            request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        )
        accounts = accounts_of(request)
        opened = await anyio.to_thread.run_sync(
            partial(accounts.open_session, token, lifetime=LIFETIME)
        )
    except EntrepotError as error:
        return here.render(
            "signin.html",
            status=error.status,
            title="Sign in",
            next=target,
            error=error_body(error),
        )
    await _end(request, here.session)
    here.actor = actor
    # A new session id: one planted before sign-in is worth nothing after it.
    here.session, here.fresh = Session.signed_in(opened.secret), True
    return here.redirect(target)


async def _end(request: Request, session: Session) -> None:
    """End ``session`` on the server, if signed in: a sign-out, or a sign-in over it,
    leaves no live session behind that a copy of its cookie could go on using."""
    if session.token is not None:
        await anyio.to_thread.run_sync(accounts_of(request).close_session, session.token)


@router.post("/signout")
async def signout(request: Request, here: Visitor) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()
    await _end(request, here.session)
    here.actor = None
    here.session, here.fresh = Session.anonymous(), True
    return here.redirect("/signin")
