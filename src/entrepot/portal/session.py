"""The portal's session: an API token sealed in an HttpOnly cookie, and CSRF tokens.

A person signs in with the API token an operator gave them (``entrepot account
create`` prints it once). Signing in opens a session on the server: a *session token*
of the same account, a child of that API token, made by the accounts module
(:meth:`~entrepot.exchange.accounts.Accounts.open_session`). The cookie holds the
session token (never the API token), a random session id and an expiry, sealed with
XSalsa20-Poly1305 (PyNaCl's ``SecretBox``) under a key derived from the node's
signing key with keyed BLAKE2b. Every worker process of a node derives the same key,
so a session works on any of them; nobody without the node's key can read or forge
one. Each request unseals the cookie and authenticates its token exactly as the API
does. Signing out revokes the session token on the server, so a copy of the cookie
is dead from the next request; revoking or letting expire the API token ends every
session opened with it.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site
sends it), ``Secure`` when the portal is served over TLS, and never put in a URL or a
log line. Signing in always starts a new session id, so a session id planted before
sign-in (fixation) is worthless after it. Each form carries a CSRF token, the keyed
BLAKE2b of the session id, which a state-changing request must send back as the
``csrf`` field or the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError
from nacl.hash import blake2b
from nacl.secret import SecretBox
from nacl.signing import SigningKey
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "LIFETIME", "Session", "SessionKeys"]


COOKIE = "entrepot_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
# A working day: a session outlives no shift, and a forgotten browser signs itself out.
_LIFETIME_S = 8 * 3600
LIFETIME = timedelta(seconds=_LIFETIME_S)
# Keyed BLAKE2b "personalization" strings keep the two derived keys apart. The seal's
# second key opens no cookie of the first, which held an API token, not a session's.
_SEAL_PERSON = b"entrepot-portal2"
_CSRF_PERSON = b"entrepot-csrf--1"


@dataclass(frozen=True)
class Session:
    """What a cookie holds: a random id, the session token once signed in, and an expiry."""

    sid: str
    token: str | None
    expires: int

    @classmethod
    def anonymous(cls) -> Session:
        return cls(secrets.token_hex(16), None, int(time.time()) + _LIFETIME_S)

    @classmethod
    def signed_in(cls, token: str) -> Session:
        """A new session id for the signed-in person (never the one before sign-in),
        holding the session token opened for them."""
        return cls(secrets.token_hex(16), token, int(time.time()) + _LIFETIME_S)

    def __repr__(self) -> str:
        return f"Session(sid={self.sid[:6]}…, signed_in={self.token is not None})"


class SessionKeys:
    """Seal and open session cookies, and make and check CSRF tokens, for one node."""

    def __init__(self, signing_key: SigningKey) -> None:
        seed = bytes(signing_key)
        self._box = SecretBox(_derive(seed, _SEAL_PERSON))
        self._csrf_key = _derive(seed, _CSRF_PERSON)

    def seal(self, session: Session) -> str:
        plain = json.dumps({"s": session.sid, "t": session.token, "e": session.expires})
        sealed = self._box.encrypt(plain.encode())
        return base64.urlsafe_b64encode(bytes(sealed)).decode().rstrip("=")

    def open(self, cookie: str | None) -> Session | None:
        """The session a cookie holds, or None when absent, forged, altered or expired."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            body = json.loads(self._box.decrypt(raw))
            session = Session(str(body["s"]), body["t"], int(body["e"]))
        except (CryptoError, ValueError, KeyError, TypeError):
            return None
        if session.token is not None and not isinstance(session.token, str):
            return None
        return session if session.expires > time.time() else None

    def csrf(self, session: Session) -> str:
        return blake2b(
            session.sid.encode(), key=self._csrf_key, digest_size=32, encoder=RawEncoder
        ).hex()

    def csrf_ok(self, session: Session, sent: str | None) -> bool:
        """Whether ``sent`` is the session's CSRF token, compared in constant time.

        Compared as UTF-8 bytes: ``hmac.compare_digest`` raises on text that is not
        ASCII, and a forged token of any characters must be refused, not crash.
        """
        if sent is None:
            return False
        return hmac.compare_digest(self.csrf(session).encode(), sent.encode("utf-8", "replace"))

    def write(
        self, response: Response, session: Session, request: Request, *, secure: bool = False
    ) -> None:
        """Set the cookie on ``response``: HttpOnly, SameSite=Strict, Secure over TLS
        (the request's own, or a ``public_url`` behind a TLS proxy: ``secure``)."""
        response.set_cookie(
            COOKIE,
            self.seal(session),
            max_age=max(0, session.expires - int(time.time())),
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure or request.url.scheme == "https",
        )


def _derive(seed: bytes, person: bytes) -> bytes:
    return blake2b(b"", key=seed, person=person, digest_size=SecretBox.KEY_SIZE, encoder=RawEncoder)
