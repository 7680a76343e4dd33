"""The access log and the Prometheus metrics of the API, and what each may say.

:class:`Observed` is the outermost middleware: for every request it writes one line
to the ``entrepot.access`` logger and counts it, with the method, the *route
template* (``/v1/catalog/datasets/{provider}/{dataset}``, never the path a client
sent, nor its query string), the status and the duration. It reads no header, so a
token can never reach a log line or a label.

``GET /metrics`` (operators and auditors) serves, through ``prometheus_client``:

- ``entrepot_http_requests_total{method, route, status}`` and
  ``entrepot_http_request_duration_seconds{method, route}``: counts and latencies of
  requests, per route template. A private query is padded to its policy's latency
  floor before it answers, so its latency tells no more than the floor does unless it
  runs longer: then it shows its duration. A private join runs longer than most
  floors; its work is that of the versions it joins, whatever its WHERE keeps, so its
  latency tells roughly their number of distinct link keys (docs/psi.md).
- ``entrepot_private_operations_total{kind, outcome}`` and
  ``entrepot_epsilon_spent_total``: counted from the public transparency log itself
  (the entries' ``kind``, ``outcome`` and ``epsilon``), so a metric can say nothing
  the log does not already state to anyone; every worker reads the same log and
  serves the same totals.

With ``entrepot serve --workers N`` the request metrics of every worker are summed
by prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``serve``); otherwise each process serves its own.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator
from decimal import Decimal

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrepot.transparency import TransparencyLog

__all__ = ["ACCESS_LOGGER", "UNMATCHED", "LogTally", "Observed", "RequestMetrics", "scrape"]

ACCESS_LOGGER = "entrepot.access"
# The route of a request no route matched: its raw path could hold anything.
UNMATCHED = "<unmatched>"
# Log entry kinds that are private operations on data (see entrepot.transparency.Kind).
_OPERATIONS = ("query", "join", "release")
# Seconds; private queries wait for their latency floor, so the scale reaches minutes.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

_access = logging.getLogger(ACCESS_LOGGER)


class RequestMetrics:
    """The request counters and latency histograms of one app, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "entrepot_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "entrepot_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )


def _literal_first(template: str) -> tuple[int, str]:
    return template.count("{"), template


class _Templates:
    """Route templates matched the way the router does, for requests a limit refused
    before routing (an answered request carries its route in its scope)."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def compiled(self) -> list[tuple[re.Pattern[str], str]]:
        if self._compiled is None:
            paths = {getattr(route, "path", "") for route in self.api.routes}
            paths |= set(self.api.openapi().get("paths", {}))
            # Literal segments first, as a router tries its routes in their order.
            ordered = sorted((p for p in paths if isinstance(p, str) and p), key=_literal_first)
            self._compiled = [(compile_path(p)[0], p) for p in ordered]
        return self._compiled

    def of(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        for pattern, template in self.compiled():
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED


class Observed:
    """ASGI middleware: one access-log line and one count per HTTP request."""

    def __init__(self, app: ASGIApp, *, api: FastAPI, metrics: RequestMetrics) -> None:
        self.app = app
        self.templates = _Templates(api)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope["method"])
            route = self.templates.of(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            _access.info(
                "method=%s route=%s status=%d duration_ms=%.1f",
                method,
                route,
                status,
                elapsed * 1000,
            )


class LogTally(Collector):
    """Private operations and ε spent, counted from the public transparency log.

    Each scrape reads only the entries appended since the last one.
    """

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._next = 0
        self._outcomes: Tally[tuple[str, str]] = Tally()
        self._epsilon = Decimal(0)

    def _catch_up(self) -> None:
        with self._lock:
            for index, entry in self.log.entries(self._next):
                self._next = index + 1
                kind = entry.get("kind")
                if kind not in _OPERATIONS:
                    continue
                self._outcomes[(kind, str(entry.get("outcome", "")))] += 1
                if entry.get("epsilon") is not None:
                    self._epsilon += Decimal(entry["epsilon"])

    def collect(self) -> Iterator[Metric]:
        self._catch_up()
        operations = CounterMetricFamily(
            "entrepot_private_operations",
            "Private operations in the transparency log, by kind and outcome "
            "(answered, repeated, refused, failed).",
            labels=("kind", "outcome"),
        )
        for (kind, outcome), count in sorted(self._outcomes.items()):
            operations.add_metric((kind, outcome), count)
        yield operations
        yield CounterMetricFamily(
            "entrepot_epsilon_spent",
            "Privacy loss ε spent by private operations, as the transparency log states it.",
            value=float(self._epsilon),
        )


def scrape(metrics: RequestMetrics, tally: LogTally) -> bytes:
    """One scrape in Prometheus's text format: this process's requests (every worker's,
    in multiprocess mode), then the log's tally."""
    requests = metrics.registry
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        requests = CollectorRegistry()
        MultiProcessCollector(requests, path=directory)
    logged = CollectorRegistry(auto_describe=False)
    logged.register(tally)
    return generate_latest(requests) + generate_latest(logged)
