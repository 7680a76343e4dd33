"""Resource limits on by default: request body size and a request rate per token.

Both are plain ASGI middleware so they run before any body is parsed:

- **Body size.** A declared ``Content-Length`` over the limit is refused at once;
  a chunked body is counted as it streams and refused the moment it passes the
  limit, so an oversized upload never lands in memory or on disk. Dataset uploads
  (``upload_paths``) get ``max_upload_bytes``; every other request
  ``request_body_max_bytes``.
- **Rate.** A token bucket per API token (keyed by a SHA-256 of the token, never
  the token itself), or per client address for anonymous requests: ``rate_limit_per_s``
  sustained, ``rate_limit_burst`` at once. Over it: 429 with ``Retry-After``. Each
  worker process keeps its own buckets, so with ``--workers N`` a client may reach
  N times the rate; the limit guards a node against a runaway client, it is not a
  billing meter (metering is).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrepot.api.errors import error_response
from entrepot.errors import LimitExceeded

__all__ = ["BodySizeLimit", "RateLimit", "TokenBuckets"]

# Buckets kept in memory at most; the least recently seen client is forgotten first.
_MAX_BUCKETS = 10_000


class _TooLarge(LimitExceeded):
    """Raised from ``receive`` when a streamed body passes the limit."""


def _too_large(limit: int, setting: str) -> LimitExceeded:
    return _TooLarge(
        f"request body larger than {limit} bytes",
        setting=setting,
        hint=f"send less, or raise ENTREPOT_{setting.upper()} on the server",
        limit=limit,
    )


class BodySizeLimit:
    """Refuse request bodies over a limit with 413, before the app reads them."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        upload_max_bytes: int,
        upload_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.upload_paths = tuple(upload_paths)

    def _limit(self, path: str) -> tuple[int, str]:
        if any(path.startswith(prefix) for prefix in self.upload_paths):
            return self.upload_max_bytes, "max_upload_bytes"
        return self.max_bytes, "request_body_max_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await error_response(_too_large(limit, setting))(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit, setting)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge as error:
            if started:
                raise
            await error_response(error)(scope, receive, send)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """Token buckets by key: ``rate`` per second sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token for ``key``: 0 when allowed, else seconds until one is free."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        self._buckets[key] = bucket
        if len(self._buckets) > _MAX_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def _client_key(scope: Scope) -> str:
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if authorization:
        return "t:" + hashlib.sha256(authorization).hexdigest()
    client = scope.get("client")
    return "a:" + (client[0] if client else "unknown")


class RateLimit:
    """Answer 429 with ``Retry-After`` once a client spends its bucket."""

    def __init__(
        self, app: ASGIApp, *, rate: float, burst: int, exempt: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(_client_key(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        error = LimitExceeded(
            f"rate limit reached: more than {self.buckets.rate:g} requests/s "
            f"(burst {self.buckets.burst}) for this token",
            hint=f"retry after {retry_after} s, or ask the operator to raise "
            "ENTREPOT_RATE_LIMIT_PER_S / ENTREPOT_RATE_LIMIT_BURST",
            setting="rate_limit_per_s",
            retry_after_s=retry_after,
        )
        response = error_response(error, status=429, headers={"Retry-After": str(retry_after)})
        await response(scope, receive, send)
