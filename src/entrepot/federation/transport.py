"""Calls to a peer node: signed, bounded, and never sent anywhere but the peer.

A peer's URL is checked when an operator adds it (:func:`peer_url`): ``http`` or
``https``, a host, no user name or password, no query or fragment. Every call
goes to that URL joined with a fixed path of this module's callers, so nothing a
user or a peer writes chooses where a request goes; redirects are never followed
(a redirect to another host is how a server-side request is usually turned
against an internal address), answers are read up to ``peer_response_max_bytes``
and no further, and every call has the ``peer_timeout_s`` timeout. Whatever goes
wrong ends as one :class:`~entrepot.errors.PeerError` that names the peer.

An answer to a signed call (:meth:`PeerCall.call`) is the peer's only if it checks:
signed by the peer for the request it answers, refusals included
(:func:`~entrepot.federation.envelope.check_response`). One that does not (unsigned,
signed for another request, a redirect, or past the bound) is a failed call, as if
the peer had not answered, and its body is never shown: anyone on the path can send
one.

A call that may be repeated (``idempotent=True``: reading the catalog feed or a
consumer's grants, or a query under its request id, which the peer answers once)
is sent again when the peer did not answer or its answer did not check, after
``peer_backoff_s``, doubled at each repeat up to 4 s, at most ``peer_retries``
times; any other call is sent once. After ``peer_breaker_failures`` failed calls
in a row a :class:`Breaker` stops calling the peer for ``peer_breaker_pause_s``,
refusing at once with the rule ``peer_paused``; the first call after the pause
tries the peer again. The plain-text calls of the witness protocol
(:meth:`PeerCall.exchange_text`) go through the same breaker and repeats.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from nacl.signing import SigningKey, VerifyKey

from entrepot.clock import utcnow
from entrepot.errors import EntrepotError, InvalidInput, PeerError, from_body
from entrepot.federation.envelope import SIGNATURE, check_response, request_digest, sign_request

__all__ = ["Breaker", "PeerCall", "breaker_of", "peer_url"]

_T = TypeVar("_T")
# The longest wait between two repeats of a call.
_BACKOFF_MAX_S = 4.0


def peer_url(url: str) -> str:
    """``url`` as a peer's base URL ending with ``/``, or :class:`InvalidInput`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"{url!r} is not a peer's URL",
            hint="give the peer's base URL, e.g. https://exchange.example.org/",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(
            f"{url!r} holds credentials, a query or a fragment",
            hint="give only the scheme, host, port and path of the peer's base URL",
        )
    return url if url.endswith("/") else url + "/"


_CLIENT: list[httpx.Client] = []
_CLIENT_LOCK = threading.Lock()


def _shared() -> httpx.Client:
    """One client for every call to a peer in this process: its connections are kept
    alive between calls (as c2sp.org/tlog-witness asks of a witness's clients), and a
    client is made once, not per call (about 10 ms each, mostly its TLS context). It is
    closed when the process exits, so no kept-alive socket is left to the collector."""
    with _CLIENT_LOCK:
        if not _CLIENT:
            _CLIENT.append(httpx.Client(follow_redirects=False))
            atexit.register(_close_shared)
        return _CLIENT[0]


def _close_shared() -> None:
    with _CLIENT_LOCK:
        while _CLIENT:
            _CLIENT.pop().close()


@dataclass
class Breaker:
    """The health of calls from one node to one peer: failures in a row, and a pause."""

    failures: int = 0
    paused_until: datetime | None = None

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def failed(self, now: datetime, threshold: int, pause_s: float) -> None:
        self.failures += 1
        if self.failures >= threshold:
            self.paused_until = now + timedelta(seconds=pause_s)

    def answered(self) -> None:
        self.failures = 0
        self.paused_until = None

    def health(self, now: datetime) -> str:
        if self.paused(now):
            assert self.paused_until is not None
            return f"paused until {self.paused_until.isoformat()}"
        return f"{self.failures} failed calls in a row" if self.failures else "ok"


# One breaker per (this node's key, peer's key), for the life of the process.
_BREAKERS: dict[tuple[bytes, bytes], Breaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_of(own_key: SigningKey, key: VerifyKey) -> Breaker:
    """The breaker of calls from the node holding ``own_key`` to the peer with ``key``."""
    with _BREAKERS_LOCK:
        return _BREAKERS.setdefault((bytes(own_key.verify_key), bytes(key)), Breaker())


class _Unanswered(Exception):
    """The peer did not answer, or not with an answer that checks: worth a repeat."""

    def __init__(self, error: PeerError) -> None:
        super().__init__(error.message)
        self.error = error


class PeerCall:
    """One peer, as this node calls it: its name, URL and key, and this node's key."""

    def __init__(
        self,
        name: str,
        url: str,
        key: VerifyKey,
        own_key: SigningKey,
        *,
        timeout_s: float,
        max_bytes: int,
        retries: int = 0,
        backoff_s: float = 0.0,
        breaker_failures: int = 5,
        breaker_pause_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.url = peer_url(url)
        self.key = key
        self.own_key = own_key
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._own = transport is not None
        self._client = (
            httpx.Client(follow_redirects=False, transport=transport) if self._own else _shared()
        )

        self.retries = retries
        self.backoff_s = backoff_s
        self.breaker_failures = breaker_failures
        self.breaker_pause_s = breaker_pause_s
        self.breaker = breaker_of(own_key, key)

    def close(self) -> None:
        if self._own:
            self._client.close()

    def __enter__(self) -> PeerCall:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _fail(self, message: str, hint: str, **details: Any) -> PeerError:
        return PeerError(
            f"peer {self.name} ({self.url}) {message}", hint=hint, peer=self.name, **details
        )

    def call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        idempotent: bool = False,
    ) -> Any:
        """Send a signed request to ``path`` (relative, with its query); the checked answer.

        An error the peer answered in entrepot's shape is raised as its own class
        of the tree, with the peer named in its message. An ``idempotent`` call is
        repeated, each time newly signed, while the peer does not answer.
        """
        return self._attempts(lambda: self._once(method, path, payload), idempotent=idempotent)

    def _attempts(self, once: Callable[[], _T], *, idempotent: bool) -> _T:
        """``once``'s result, under the breaker, repeated with backoff while the peer does
        not answer if the call is ``idempotent``."""
        breaker = self.breaker
        if breaker.paused(utcnow()) and breaker.paused_until is not None:
            raise self._fail(
                f"is not called until {breaker.paused_until.isoformat()}, after "
                f"{breaker.failures} failed calls in a row",
                "the peer seems down; calls resume after ENTREPOT_PEER_BREAKER_PAUSE_S, "
                "and `entrepot peer list` shows its health",
                rule="peer_paused",
            )
        repeats = self.retries if idempotent else 0
        attempt = 0
        while True:
            try:
                answered = once()
            except _Unanswered as unanswered:
                if attempt < repeats:
                    time.sleep(min(self.backoff_s * 2**attempt, _BACKOFF_MAX_S))
                    attempt += 1
                    continue
                breaker.failed(utcnow(), self.breaker_failures, self.breaker_pause_s)
                raise unanswered.error from None
            except EntrepotError:
                breaker.answered()
                raise
            breaker.answered()
            return answered

    def _once(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        body = b"" if payload is None else json.dumps(payload, sort_keys=True).encode()
        url = self.url + path.lstrip("/")
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = sign_request(self.own_key, self.key, method, target, body, now=utcnow())
        if payload is not None:
            headers["Content-Type"] = "application/json"
        response, content = self._send(method, url, body, headers, self.timeout_s)
        if response.is_redirect:
            # Never signed: a node's answers come from its routes, and none redirects.
            raise _Unanswered(
                self._fail(
                    f"answered with a redirect ({response.status_code}), which is not followed",
                    "peers are called at the URL their operator added; `entrepot peer add` "
                    "the peer again at its current URL",
                    rule="response_redirect",
                )
            )
        try:
            check_response(
                self.name,
                self.key,
                request_digest(headers),
                response.status_code,
                content,
                response.headers.get(SIGNATURE),
            )
        except PeerError as unsigned:
            raise _Unanswered(unsigned) from None
        try:
            decoded = json.loads(content)
        except (ValueError, RecursionError):
            # JSON nested deeper than the parser's stack (about 1,000 levels) is not an
            # answer of an entrepot node either.
            raise self._fail(
                "answered with something that is not JSON",
                "the URL may not be an entrepot node; check it with the peer's operator",
                rule="response_not_json",
            ) from None
        if response.is_error:
            raise self._peer_error(decoded, response.status_code)
        return decoded

    def exchange_text(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        timeout_s: float | None = None,
        idempotent: bool = False,
    ) -> tuple[int, str]:
        """A call of a plain-text protocol of c2sp.org (a witness's add-checkpoint, a log's
        checkpoint): unsigned, as independent software speaks it, but as bounded as
        :meth:`call`, under the same breaker and repeats. The status and the answer's text."""
        url = self.url + path.lstrip("/")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        headers = {"Content-Type": "text/plain"}

        def once() -> tuple[int, str]:
            response, content = self._send(method, url, body, headers, timeout)
            try:
                return response.status_code, content.decode("utf-8")
            except UnicodeDecodeError:
                raise self._fail(
                    "answered with something that is not UTF-8 text",
                    "the URL may not be an entrepot node; check it with the peer's operator",
                    rule="response_not_text",
                ) from None

        return self._attempts(once, idempotent=idempotent)

    def _send(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[httpx.Response, bytes]:
        """Send one request; its response and body read within the bounds, or
        :class:`_Unanswered` if the peer did not answer within them."""
        try:
            with self._client.stream(
                method, url, content=body, headers=headers, timeout=timeout
            ) as response:
                content = self._read(response)
        except httpx.TimeoutException:
            raise _Unanswered(
                self._fail(
                    "did not answer in time",
                    "the peer is slow or down; retry later, or raise ENTREPOT_PEER_TIMEOUT_S",
                    rule="peer_timeout",
                )
            ) from None
        except httpx.HTTPError as exc:
            raise _Unanswered(
                self._fail(
                    f"cannot be reached ({type(exc).__name__})",
                    "check that the peer is up and its URL in `entrepot peer list`",
                    rule="peer_unreachable",
                )
            ) from None
        return response, content

    def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                # Not read whole, so not checked: a failed call, as one unsigned.
                raise _Unanswered(
                    self._fail(
                        f"answered with more than {self.max_bytes} bytes",
                        "raise ENTREPOT_PEER_RESPONSE_MAX_BYTES if the peer's catalog is that "
                        "large",
                        setting="peer_response_max_bytes",
                        rule="response_too_large",
                    )
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _peer_error(self, decoded: Any, status: int) -> EntrepotError:
        error = decoded.get("error") if isinstance(decoded, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            return self._fail(
                f"answered {status} without an error body", "retry later", rule="response_shape"
            )
        raised = from_body(error)
        raised.message = f"peer {self.name}: {raised.message}"
        raised.args = (raised.message,)
        raised.details.setdefault("peer", self.name)
        return raised
