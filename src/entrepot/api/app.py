"""The HTTP API: one FastAPI app over one opened :class:`~entrepot.exchange.node.Node`.

Routers are thin: they authenticate, check which objects the caller may touch,
call the domain layer and shape its result into the wire models of
:mod:`entrepot.schemas`. Every error has the one shape of :mod:`entrepot.api.errors`;
limits are on by default (:mod:`entrepot.api.limits`). Every answer carries the
:data:`DEFAULT_HEADERS` its route did not set itself.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import wait
from typing import Any, Literal

import anyio.to_thread
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrepot import __version__, portal
from entrepot.api import errors, openapi
from entrepot.api._query_workers import runner_for
from entrepot.api.auth import Auditor
from entrepot.api.limits import AuthGuard, BodySizeLimit, BodyTimeLimit, GuessGate, RateLimit
from entrepot.api.metrics import LogTally, Observed, RequestMetrics, scrape
from entrepot.exchange import Exchange, Node
from entrepot.settings import Settings

__all__ = [
    "DEFAULT_HEADERS",
    "ROUTERS",
    "UPLOAD_PATHS",
    "create_app",
    "from_environment",
    "server_options",
]

# Router modules under entrepot.api.routers, each exposing `router`; in /docs order.
ROUTERS: tuple[str, ...] = (
    "catalog",
    "standards",
    "providers",
    "datasets",
    "policies",
    "access",
    "queries",
    "budgets",
    "usage",
    "accounts",
    "audit",
    "openings",
    "releases",
    "sharing",
    "federation",
)

# Paths whose bodies are dataset uploads, limited by `max_upload_bytes` instead.
UPLOAD_PATHS = ("/v1/datasets", *portal.UPLOAD_PATHS)

_HEALTH = "/healthz"
_THREADS = 256

# On every answer whose route did not set the header itself (the portal sets its own
# pages' and files'). No browser guesses a JSON body, or a file of a release, to be a
# page or a script; no answer, which is of one caller's account and may hold its
# figures, is kept by a cache on the way or on disk; none is shown in another site's frame.
DEFAULT_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
)


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class _DefaultHeaders:
    """ASGI middleware: :data:`DEFAULT_HEADERS` on every HTTP answer that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in DEFAULT_HEADERS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_defaults)


class _Api(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Around Starlette's outermost layer too, which answers an unexpected error's
        # 500 past every middleware that add_middleware adds.
        return _DefaultHeaders(super().build_middleware_stack())


def create_app(node_or_settings: Node | Settings) -> FastAPI:
    """The API app over a node; given settings, it opens the node and closes it on shutdown."""
    owned = isinstance(node_or_settings, Settings)
    node = node_or_settings if isinstance(node_or_settings, Node) else Node.open(node_or_settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints and dependencies run in anyio's thread pool (40 threads by
        # default); with 50 clients or more, every call would queue for a thread.
        anyio.to_thread.current_default_thread_limiter().total_tokens = _THREADS
        # Private queries run in worker processes started here, before the first request.
        runner = runner_for(app.state.exchange)
        try:
            await runner.start()
            app.state.query_runner = runner
            yield
        finally:
            app.state.query_runner = None
            app.state.auth_guard.close()
            await anyio.to_thread.run_sync(runner.close)
            if owned:
                node.close()

    app = _Api(
        title="entrepot",
        version=__version__,
        summary="A privacy-preserving data exchange: trade the insight, not the data.",
        description="Authenticate with `Authorization: Bearer <token>` "
        "(`entrepot account create` prints a token once). Every error body is "
        '`{"error": {"code", "message", "hint"}}`.',
        lifespan=lifespan,
        responses={500: errors.ERROR_RESPONSES[500]},
        docs_url=None,
        redoc_url=None,
    )
    app.state.node = node
    app.state.exchange = Exchange(node)
    app.state.auth_guard = AuthGuard(node.settings)
    errors.install(app)
    settings = node.settings
    app.add_middleware(
        RateLimit,
        rate=settings.rate_limit_per_s,
        burst=settings.rate_limit_burst,
        exempt=(_HEALTH,),
    )
    app.add_middleware(GuessGate)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.request_body_max_bytes,
        upload_max_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    app.add_middleware(BodyTimeLimit, timeout_s=settings.request_body_timeout_s)

    # Outermost: the access log and the counts see every answer, refusals by limits too.
    requests = RequestMetrics()
    app.add_middleware(Observed, api=app, metrics=requests)
    tally = LogTally(node.log)

    @app.get(_HEALTH, tags=["health"], summary="Liveness check (no authentication).")
    def healthz() -> Health:
        return Health(status="ok", version=__version__)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics: requests, latencies, private operations, ε spent "
        "(operators and auditors).",
        response_class=Response,
        responses={
            **errors.ERROR_RESPONSES,
            200: {
                "description": "The Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        },
    )
    def metrics(_actor: Auditor) -> Response:
        return Response(scrape(requests, tally), media_type=CONTENT_TYPE_LATEST)

    for name in ROUTERS:
        module = importlib.import_module(f"entrepot.api.routers.{name}")
        # A router answering in another protocol's shape declares its own (Delta Sharing).
        responses = getattr(module, "RESPONSES", errors.ERROR_RESPONSES)
        app.include_router(module.router, responses=responses)
    # The web portal at /, over the same client as the routes (none of its pages is API).
    app.include_router(portal.router)
    app.state.error_page = portal.error_page
    openapi.install(app)
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that bound what a connection may make the server hold.

    httptools, uvicorn's default parser, buffers headers of any size (64 MiB were
    accepted); h11 stops at ``request_header_max_bytes`` and answers 400.
    """
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": settings.request_header_max_bytes,
    }


def from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory``: settings from ``ENTREPOT_*`` variables.

    ``entrepot serve --workers N`` starts N processes, each calling this; each of
    them ends when the process that started it is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with, args=(parent.sentinel,), name="exit-with-parent", daemon=True
        ).start()
    return create_app(Settings())


# How long a worker whose parent died may take to finish its requests, once told to.
_ORPHAN_GRACE_S = 10.0


def _exit_with(sentinel: int) -> None:
    """Shut this worker down when the serving process is gone (killed without a shutdown).

    uvicorn's supervisor passes its listening socket to every worker; a SIGKILLed
    supervisor would leave them serving, and the port taken, for ever. SIGTERM is
    uvicorn's own graceful shutdown; a worker that has not ended after the grace
    period is ended outright. Its query processes follow it the same way.
    """
    wait([sentinel])
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_ORPHAN_GRACE_S)
    os._exit(1)
