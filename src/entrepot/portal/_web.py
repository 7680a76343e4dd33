"""What every portal page shares: the visit (session, account, client), templates, headers.

A page takes a :class:`Visit` (a FastAPI dependency): the session from the cookie,
the account its API token stands for (authenticated by the API's own
:func:`~entrepot.api.auth.current_actor`, with its limits), and the node's client
acting as that account (:func:`~entrepot.api.routers._client.client_of`, as every API
route). Pages only render what the client returns; an error of the core is shown as
a page with its message, hint and rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from entrepot import __version__
from entrepot._text import with_article
from entrepot.api.auth import current_actor
from entrepot.api.routers._client import client_of
from entrepot.client.local import LocalClient
from entrepot.errors import EntrepotError, Forbidden, Unauthorized
from entrepot.exchange.accounts import Actor
from entrepot.portal.session import COOKIE, CSRF_FIELD, CSRF_HEADER, Session, SessionKeys

__all__ = ["SECURITY_HEADERS", "Visit", "error_body", "local_path", "visit"]

# No inline script or style anywhere, nothing from another origin, never in a frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=PackageLoader("entrepot.portal", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: str | None) -> str:
    """An API time (ISO 8601, UTC) as people read it."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}g}"


_templates.filters["when"] = _when
_templates.filters["number"] = _number


def keys_of(request: Request) -> SessionKeys:
    """The app's session keys, derived once from the node's signing key."""
    state = request.app.state
    keys: SessionKeys | None = getattr(state, "portal_keys", None)
    if keys is None:
        keys = state.portal_keys = SessionKeys(state.node.signing_key)
    return keys


# What a browser's URL parser reads otherwise than it is written: it drops tabs and
# newlines anywhere (so "/\t/evil.example" is "//evil.example", another site) and reads
# a backslash as a slash; no path of this site has a control character.
_NOT_IN_A_PATH = re.compile(r"[\x00-\x1f\x7f\\]")


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (never another origin) as a browser reads
    it, else ``default``."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or _NOT_IN_A_PATH.search(target)
    ):
        return default
    return target


def error_body(error: EntrepotError) -> dict[str, Any]:
    """The error as the API shapes it: code, message, hint and the rule, clause or budget."""
    body: dict[str, Any] = error.to_dict()["error"]
    return body


@dataclass
class Visit:
    """One request to the portal: who is signed in, and how to answer them."""

    request: Request
    keys: SessionKeys
    session: Session
    actor: Actor | None
    fresh: bool  # the cookie must be written (new or renewed session)

    @property
    def client(self) -> LocalClient:
        assert self.actor is not None, "pages that use the client require sign-in"
        return client_of(self.request, self.actor)

    @property
    def csrf(self) -> str:
        return self.keys.csrf(self.session)

    def csrf_ok(self, form: FormData | None = None) -> bool:
        sent = self.request.headers.get(CSRF_HEADER)
        if sent is None and form is not None:
            field = form.get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        return self.keys.csrf_ok(self.session, sent)

    def finish(self, response: Response, session: Session | None = None) -> Response:
        """Add the security headers, and the cookie when the session is new or changed."""
        response.headers.update(SECURITY_HEADERS)
        if session is not None:
            self.session, self.fresh = session, True
        if self.fresh:
            settings = self.request.app.state.node.settings
            secure = (settings.public_url or "").startswith("https://")
            self.keys.write(response, self.session, self.request, secure=secure)
        return response

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        me = None if self.actor is None else self.client.me()
        page = _templates.get_template(template).render(
            me=me,
            csrf=self.csrf,
            path=self.request.url.path,
            version=__version__,
            **context,
        )
        return self.finish(HTMLResponse(page, status_code=status))

    def redirect(self, target: str) -> Response:
        return self.finish(RedirectResponse(target, status_code=303))

    def to_signin(self) -> Response:
        here = self.request.url.path
        if self.request.url.query:
            here += "?" + self.request.url.query
        return self.redirect("/signin?next=" + quote(here, safe="/"))

    def failed(self, error: EntrepotError, title: str = "That did not work") -> Response:
        return self.render("error.html", status=error.status, title=title, error=error_body(error))

    def refused_csrf(self) -> Response:
        error = Forbidden(
            "the form's security token is missing or out of date",
            hint="reload the page and submit the form again",
            rule="csrf",
        )
        return self.failed(error, "Form refused")

    def gate(self, roles: tuple[str, ...] = ()) -> Response | None:
        """The answer to a visitor who is signed out, or whose account is not of
        ``roles`` (when given); None for one who may go on."""
        if self.actor is None:
            return self.to_signin()
        if roles and self.actor.role not in roles:
            return self.failed(
                Forbidden(
                    f"{with_article(self.actor.role)} account has no use for this page",
                    hint=f"sign in with an account with role: {', '.join(roles)}",
                    role=self.actor.role,
                ),
                "Not for this account",
            )
        return None

    def page(self, build: Callable[[], Response], *, roles: tuple[str, ...] = ()) -> Response:
        """A page for a signed-in account (of one of ``roles``, when given): what
        ``build`` answers, or the core's error as a page."""
        refused = self.gate(roles)
        if refused is not None:
            return refused
        try:
            return build()
        except EntrepotError as error:
            return self.failed(error)

    async def page_async(
        self, build: Callable[[], Response], *, roles: tuple[str, ...] = ()
    ) -> Response:
        """:meth:`page` from an async route: the core's calls run in a worker thread."""
        return await anyio.to_thread.run_sync(partial(self.page, build, roles=roles))

    async def json_async(
        self, build: Callable[[], Any], *, roles: tuple[str, ...] = ()
    ) -> Response:
        return await anyio.to_thread.run_sync(partial(self.json, build, roles=roles))

    def refusal(self, roles: tuple[str, ...] = ()) -> EntrepotError | None:
        """Why a script's call may not go on: signed out, no CSRF token, or the role."""
        if self.actor is None:
            return Unauthorized("you are signed out", hint="sign in again in this browser")
        if not self.csrf_ok():
            return Forbidden(
                "the request's security token is missing or out of date",
                hint="reload the page and try again",
                rule="csrf",
            )
        if roles and self.actor.role not in roles:
            return Forbidden(
                f"{with_article(self.actor.role)} account may not do this",
                hint=f"sign in with an account with role: {', '.join(roles)}",
                role=self.actor.role,
            )
        return None

    def json_error(self, error: EntrepotError) -> Response:
        headers = {}
        if "retry_after_s" in error.details:
            headers["Retry-After"] = str(error.details["retry_after_s"])
        response = JSONResponse(error.to_dict(), status_code=error.status, headers=headers)
        return self.finish(response)

    def json(self, build: Callable[[], Any], *, roles: tuple[str, ...] = ()) -> Response:
        """A JSON answer for the portal's scripts (the API's body shapes), or its error."""
        refused = self.refusal(roles)
        if refused is not None:
            return self.json_error(refused)
        try:
            body = build()
        except EntrepotError as failure:
            return self.json_error(failure)
        return self.finish(JSONResponse(body))


async def visit(request: Request) -> Visit:
    """The visit behind a request: the sealed session, and the account its token names."""
    keys = keys_of(request)
    session = keys.open(request.cookies.get(COOKIE))
    fresh = session is None
    if session is None:
        session = Session.anonymous()
    actor = None
    if session.token is not None:
        try:
            actor = await _session_actor(request, session.token)
        except Unauthorized:
            # Revoked or expired since sign-in: the session ends with the token.
            session, fresh = Session.anonymous(), True
    return Visit(request, keys, session, actor, fresh)


async def _session_actor(request: Request, token: str) -> Actor:
    """The account a session token stands for, authenticated as the API authenticates a
    bearer token.

    The API remembers the token it authenticated on the request, as the request's own
    bearer token, so that a route's dependencies do not check it twice. A session's
    token is not the request's bearer token, so it is not left there: a token pasted
    into the sign-in form of a signed-in browser must be checked on its own, with its
    scope and the limits on guesses, not answered with the session's account.
    """
    try:
        return await current_actor(
            request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        )
    finally:
        request.state.token = None


def form_text(form: Mapping[str, Any], name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default
