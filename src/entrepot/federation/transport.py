"""Calls to a peer node: signed, bounded, and never sent anywhere but the peer.

A peer's URL is checked when an operator adds it (:func:`peer_url`): ``http`` or
``https``, a host, no user name or password, no query or fragment. Every call
goes to that URL joined with a fixed path of this module's callers, so nothing a
user or a peer writes chooses where a request goes; redirects are never followed
(a redirect to another host is how a server-side request is usually turned
against an internal address), answers are read up to ``peer_response_max_bytes``
and no further, and every call has the ``peer_timeout_s`` timeout. Whatever goes
wrong ends as one :class:`~entrepot.errors.PeerError` that names the peer.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx
from nacl.signing import SigningKey, VerifyKey

from entrepot.clock import utcnow
from entrepot.errors import EntrepotError, InvalidInput, PeerError, from_body
from entrepot.federation.envelope import NONCE, SIGNATURE, check_response, sign_request

__all__ = ["PeerCall", "peer_url"]


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
    client is made once, not per call (about 10 ms each, mostly its TLS context)."""
    with _CLIENT_LOCK:
        if not _CLIENT:
            _CLIENT.append(httpx.Client(follow_redirects=False))
        return _CLIENT[0]


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

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """Send a signed request to ``path`` (relative, with its query); the checked answer.

        An error the peer answered in entrepot's shape is raised as its own class
        of the tree, with the peer named in its message.
        """
        body = b"" if payload is None else json.dumps(payload, sort_keys=True).encode()
        url = self.url + path.lstrip("/")
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = sign_request(self.own_key, self.key, method, target, body, now=utcnow())
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            with self._client.stream(
                method, url, content=body, headers=headers, timeout=self.timeout_s
            ) as response:
                content = self._read(response)
        except httpx.TimeoutException:
            raise self._fail(
                "did not answer in time",
                "the peer is slow or down; retry later, or raise ENTREPOT_PEER_TIMEOUT_S",
            ) from None
        except httpx.HTTPError as exc:
            raise self._fail(
                f"cannot be reached ({type(exc).__name__})",
                "check that the peer is up and its URL in `entrepot peer list`",
            ) from None
        if response.is_redirect:
            raise self._fail(
                f"answered with a redirect ({response.status_code}), which is not followed",
                "peers are called at the URL their operator added; `entrepot peer add` the "
                "peer again at its current URL",
            )
        check_response(
            self.name,
            self.key,
            headers[NONCE],
            response.status_code,
            content,
            response.headers.get(SIGNATURE),
        )
        try:
            decoded = json.loads(content)
        except ValueError:
            raise self._fail(
                "answered with something that is not JSON",
                "the URL may not be an entrepot node; check it with the peer's operator",
            ) from None
        if response.is_error:
            raise self._peer_error(decoded, response.status_code)
        return decoded

    def exchange_text(
        self, method: str, path: str, body: bytes = b"", *, timeout_s: float | None = None
    ) -> tuple[int, str]:
        """A call of a plain-text protocol of c2sp.org (a witness's add-checkpoint, a log's
        checkpoint): unsigned, as independent software speaks it, but as bounded as
        :meth:`call`. The status and the answer's text."""
        url = self.url + path.lstrip("/")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            with self._client.stream(
                method, url, content=body, headers={"Content-Type": "text/plain"}, timeout=timeout
            ) as response:
                content = self._read(response)
        except httpx.TimeoutException:
            raise self._fail(
                "did not answer in time",
                "the peer is slow or down; retry later, or raise ENTREPOT_PEER_TIMEOUT_S",
            ) from None
        except httpx.HTTPError as exc:
            raise self._fail(
                f"cannot be reached ({type(exc).__name__})",
                "check that the peer is up and its URL in `entrepot peer list`",
            ) from None
        try:
            return response.status_code, content.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail(
                "answered with something that is not UTF-8 text",
                "the URL may not be an entrepot node; check it with the peer's operator",
            ) from None

    def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise self._fail(
                    f"answered with more than {self.max_bytes} bytes",
                    "raise ENTREPOT_PEER_RESPONSE_MAX_BYTES if the peer's catalog is that large",
                    setting="peer_response_max_bytes",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _peer_error(self, decoded: Any, status: int) -> EntrepotError:
        error = decoded.get("error") if isinstance(decoded, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            return self._fail(f"answered {status} without an error body", "retry later")
        raised = from_body(error)
        raised.message = f"peer {self.name}: {raised.message}"
        raised.args = (raised.message,)
        raised.details.setdefault("peer", self.name)
        return raised
