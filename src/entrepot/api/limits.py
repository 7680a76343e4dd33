"""Resource limits on by default: body size and time, request rate, and what a login may cost.

The first three are plain ASGI middleware so they run before any body is parsed:

- **Body size.** A declared ``Content-Length`` over the limit is refused at once;
  a chunked body is counted as it streams and refused the moment it passes the
  limit, so an oversized upload never lands in memory or on disk. Dataset uploads
  (``upload_paths``) get ``max_upload_bytes``; every other request
  ``request_body_max_bytes``.
- **Body time.** The time spent waiting for a body's bytes may reach
  ``request_body_timeout_s``, and as much again for each MiB that has arrived: a client
  trickling its body is answered 408 once that is spent, whatever size it declared,
  and a large upload at a steady pace runs to its end. A refused body (too large or
  too slow) closes its connection: the rest of it is never read.
- **Rate.** A token bucket per API token id (the public half of ``ent_<id>_<secret>``,
  so a new secret does not buy a new bucket), per SHA-256 of any other
  ``Authorization`` header, or per client address for anonymous requests:
  ``rate_limit_per_s`` sustained, ``rate_limit_burst`` at once. Over it: 429 with
  ``Retry-After``. Each worker process keeps its own buckets, so with ``--workers N``
  a client may reach N times the rate; the limit guards a node against a runaway
  client, it is not a billing meter (metering is).
- **Logins.** A token that is not cached yet needs an Argon2id check (64 MiB, tens
  of ms): :class:`AuthGuard` spends one only when the token id and the client
  address both have failures left (``auth_failures_*``; a success gives its charge
  back, so only failures count), and runs at most ``auth_verify_concurrency`` at
  once; the next ones wait up to ``auth_verify_wait_s``, then get 429. Memory is
  bounded by the concurrency, whatever the flood; a cached token passes untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrepot.api.errors import error_response
from entrepot.errors import LimitExceeded, Unauthorized
from entrepot.exchange.accounts import token_id_of
from entrepot.settings import Settings

__all__ = [
    "AuthGuard",
    "BodySizeLimit",
    "BodyTimeLimit",
    "GuessGate",
    "RateLimit",
    "TokenBuckets",
    "TooManyAttempts",
]

# Buckets kept in memory at most; the least recently seen client is forgotten first.
_MAX_BUCKETS = 10_000
# Nice value of the threads that run Argon2id checks (0 is the default, 19 the lowest).
_CHECK_NICE = 10
# How long a guess refused before routing is held before its 429 is sent. Without it,
# 64 clients guessing back to back got 379 refusals a second, and a verified client's
# search p99 rose from 11 to 138 ms on an idle 2-core machine (benchmarks/RESULTS.md).
_GUESS_HOLD_S = 1.0
_MIB = 1024 * 1024
# On the refusal of a body not read whole: the rest of it is never read, so the connection
# cannot carry another request, and uvicorn would keep it open while the client sends.
_CLOSE = (b"connection", b"close")
_T = TypeVar("_T")


class _BodyRefused(LimitExceeded):
    """Raised from ``receive`` when a body is refused as it streams."""


class _TooLarge(_BodyRefused):
    """Raised from ``receive`` when a streamed body passes the limit."""


class _TooSlow(_BodyRefused):
    """Raised from ``receive`` when a body's time is spent before it has all arrived."""

    status = 408


class TooManyAttempts(LimitExceeded):
    """A limit on a client's rate was hit: 429, with ``retry_after_s`` for ``Retry-After``."""

    status = 429


def _too_large(limit: int, setting: str) -> _TooLarge:
    return _TooLarge(
        f"request body larger than {limit} bytes",
        setting=setting,
        hint=f"send less, or raise ENTREPOT_{setting.upper()} on the server",
        limit=limit,
    )


class _BodyWatch:
    """One request under a body limit: a refusal raised from ``receive`` is answered in
    the one shape even when it escapes the app, and its answer closes the connection."""

    def __init__(self, unread: bool = False) -> None:
        self.refused = False
        self.started = False
        # Whether a body the request declared is yet to be read whole.
        self.unread = unread

    def refuse(self, error: _BodyRefused) -> _BodyRefused:
        """``error``, to raise from ``receive``; the answer will close the connection."""
        self.refused = True
        return error

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.started = True
                headers = list(message.get("headers", ()))
                if (self.refused or self.unread) and _CLOSE not in headers:
                    message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        try:
            await app(scope, receive, closing_send)
        except _BodyRefused as error:
            if self.started:
                raise
            await error_response(error, scope=scope)(scope, receive, closing_send)


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
            refusal = error_response(
                _too_large(limit, setting), headers={"Connection": "close"}, scope=scope
            )
            await refusal(scope, receive, send)
            return
        seen = 0
        watch = _BodyWatch()

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise watch.refuse(_too_large(limit, setting))
            return message

        await watch.run(self.app, scope, counting_receive, send)


class BodyTimeLimit:
    """Refuse with 408 a request body that does not arrive in time: waiting for it may
    take ``timeout_s``, and as long again for each MiB that has arrived.

    Only the time the app spends waiting in ``receive`` counts, from its first call: a
    request the app answers without reading its body, or reads late (once its caller
    is authenticated), is not charged for the wait, nor for the app's own work between
    two parts of it. Once the body is complete, ``receive`` only waits for the client's
    disconnect (during a streamed answer) and is not timed.
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    def _too_slow(self) -> _TooSlow:
        return _TooSlow(
            f"request body too slow: less than 1 MiB per {self.timeout_s:g} s",
            setting="request_body_timeout_s",
            hint="send the body faster, or raise ENTREPOT_REQUEST_BODY_TIMEOUT_S on the "
            "server (the seconds each MiB may take)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        waited = 0.0
        seen = 0
        complete = False
        # An answer sent before a declared body is read whole (a 401 on an upload)
        # closes the connection too: the server would otherwise keep it, with no timer,
        # for as long as the client goes on sending a body no one reads.
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        watch = _BodyWatch(unread=declared)

        async def timed_receive() -> Message:
            nonlocal waited, seen, complete
            if complete:
                return await receive()
            # Allowed time grows with what arrived, not with what was declared: a trickle
            # is cut after timeout_s whatever its Content-Length, while an upload keeping
            # 1 MiB per timeout_s (17 kB/s at the default) runs to its end, however large.
            left = self.timeout_s * (1 + seen / _MIB) - waited
            began = time.monotonic()
            try:
                async with asyncio.timeout(max(0.0, left)):
                    message = await receive()
            except TimeoutError:
                raise watch.refuse(self._too_slow()) from None
            finally:
                waited += time.monotonic() - began
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:
                complete = True
            watch.unread = not complete
            return message

        await watch.run(self.app, scope, timed_receive, send)


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

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token, spending none: 0 when it has one now."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(
            float(self.burst), bucket.tokens + (time.monotonic() - bucket.stamp) * self.rate
        )
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def give_back(self, key: str) -> None:
        """Return the token a ``take`` spent, when what it paid for turned out free."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)


def _client_key(scope: Scope) -> str:
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if authorization:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        token_id = token_id_of(credentials.strip()) if scheme.lower() == "bearer" else None
        if token_id is not None:
            return "i:" + token_id
        return "t:" + hashlib.sha256(authorization).hexdigest()
    client = scope.get("client")
    return "a:" + (client[0] if client else "unknown")


class GuessGate:
    """Refuse a token that is not verified yet, before routing, when its id or the
    caller's address has no failures left: the decision :meth:`AuthGuard.attempt`
    would take, at the cost of a header read. Under a flood of guesses nearly every
    request ends here, so FastAPI's routing and dependencies run only for the rest
    (see benchmarks/RESULTS.md, wrong secrets for real token ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = _guess_refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        # Held before it is sent: a client that guesses again as soon as it is refused
        # gets one refusal a second per connection, not hundreds, and the event loop
        # stays free for the others. Waiting costs this worker no thread.
        await asyncio.sleep(min(_GUESS_HOLD_S, refusal.details["retry_after_s"]))
        headers = {"Retry-After": str(refusal.details["retry_after_s"])}
        await error_response(refusal, headers=headers, scope=scope)(scope, receive, send)


def _guess_refusal(scope: Scope) -> TooManyAttempts | None:
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    scheme, _, credentials = authorization.decode("latin-1").partition(" ")
    token = credentials.strip()
    token_id = token_id_of(token) if scheme.lower() == "bearer" else None
    state = scope["app"].state
    if token_id is None or state.exchange.accounts.is_cached(token):
        return None
    client = scope.get("client")
    guard: AuthGuard = state.auth_guard
    return guard.refusal(token_id, client[0] if client else "unknown")


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
        response = error_response(
            error, status=429, headers={"Retry-After": str(retry_after)}, scope=scope
        )
        await response(scope, receive, send)


def _lower_priority() -> None:
    # Linux keeps a nice value per thread, and Argon2id's lanes are threads this one
    # starts, which inherit it: checks then yield the CPU to requests already
    # authenticated. Measured with benchmarks/auth_flood.py (see RESULTS.md).
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _CHECK_NICE)


def _retry_after(wait: float) -> int:
    return max(1, math.ceil(wait))


class AuthGuard:
    """What an API worker may spend on tokens it has not verified yet.

    ``attempt`` is entered around the authentication of each token that is not
    cached. Once one of the ``auth_verify_concurrency`` check slots is free, it
    charges the buckets of the token id and of the client address before anything
    runs, so a burst of parallel guesses is cut at the burst; an attempt that ends in
    :class:`Unauthorized` (a wrong secret, an unknown, expired or revoked token) keeps
    the charge, any other gives it back. :class:`GuessGate` refuses, before routing,
    what a spent budget would refuse here.
    """

    def __init__(self, settings: Settings) -> None:
        rate = settings.auth_failures_per_min / 60
        self.by_token_id = TokenBuckets(rate, settings.auth_failures_burst)
        self.by_address = TokenBuckets(rate, settings.auth_address_failures_burst)
        self.concurrency = settings.auth_verify_concurrency
        self.wait_s = settings.auth_verify_wait_s
        # Made on first use, inside the server's event loop.
        self._slots: anyio.Semaphore | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._checks = ThreadPoolExecutor(
            max_workers=self.concurrency,
            thread_name_prefix="entrepot-token-check",
            initializer=_lower_priority,
        )

    async def check(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run an Argon2id check in the guard's own threads, at a lower CPU priority."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._checks, function, *args)

    def close(self) -> None:
        self._checks.shutdown(wait=False, cancel_futures=True)

    async def once(self, key: str, run: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``run`` once for the parallel callers with the same ``key`` (a digest of
        the whole token): the first one's check, and its outcome, serve them all.

        A client's first requests often go out in parallel; each would otherwise charge
        the token id's failure budget before any succeeds and gives it back.
        """
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(run())
            self._pending[key] = pending
            pending.add_done_callback(partial(self._settled, key))
        return cast("_T", await asyncio.shield(pending))

    def _settled(self, key: str, done: asyncio.Future[Any]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: a caller cancelled meanwhile need not see it

    def refusal(self, token_id: str, address: str) -> TooManyAttempts | None:
        """What :meth:`attempt` would refuse now for ``token_id`` from ``address``,
        without charging anything; ``None`` when it would admit."""
        wait = self.by_token_id.wait(token_id)
        if wait > 0:
            return self._refused(wait, "this token id", "auth_failures_burst")
        wait = self.by_address.wait(address)
        if wait > 0:
            return self._refused(wait, "this address", "auth_address_failures_burst")
        return None

    @asynccontextmanager
    async def attempt(self, token_id: str, address: str) -> AsyncIterator[None]:
        """Admit one Argon2id check for ``token_id`` from ``address``, or raise 429.

        The budgets are charged once a check slot is held, so only the checks that run
        hold a charge: a client's many first requests from one address (or many
        clients behind one) wait for a slot instead of spending the address's budget
        on checks that will succeed and give it back."""
        await self._acquire()
        wait = self.by_token_id.take(token_id)
        if wait > 0:
            self._release()
            raise self._refused(wait, "this token id", "auth_failures_burst")
        wait = self.by_address.take(address)
        if wait > 0:
            self._release()
            self.by_token_id.give_back(token_id)
            raise self._refused(wait, "this address", "auth_address_failures_burst")
        failed = False
        try:
            yield
        except Unauthorized:
            failed = True
            raise
        finally:
            self._release()
            if not failed:
                self.by_token_id.give_back(token_id)
                self.by_address.give_back(address)

    async def _acquire(self) -> None:
        if self._slots is None:
            self._slots = anyio.Semaphore(self.concurrency)
        try:
            self._slots.acquire_nowait()
            return
        except anyio.WouldBlock:
            pass
        with anyio.move_on_after(self.wait_s) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise TooManyAttempts(
                f"the server is busy checking {self.concurrency} other tokens",
                setting="auth_verify_concurrency",
                hint="retry after 1 s; an operator may raise "
                "ENTREPOT_AUTH_VERIFY_CONCURRENCY (each check holds its memory cost)",
                retry_after_s=1,
            )

    def _release(self) -> None:
        assert self._slots is not None
        self._slots.release()

    def _refused(self, wait: float, whose: str, setting: str) -> TooManyAttempts:
        retry_after = _retry_after(wait)
        return TooManyAttempts(
            f"too many failed authentications from {whose}; retry after {retry_after} s",
            setting=setting,
            hint="check the token; an operator may raise ENTREPOT_AUTH_FAILURES_PER_MIN "
            f"or ENTREPOT_{setting.upper()}",
            retry_after_s=retry_after,
        )
