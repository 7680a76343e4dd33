"""Private queries run out of the serving process, in a small pool of worker processes.

A private query is mostly Python under the GIL (parse, check, rewrite, noise, ledger,
log, signature) around a DuckDB run. In the serving process every other request then
waits for its turn at the interpreter. Measured on a shared 2-core machine (load
average ~5, 100,000 rows), a probe of 30 short Python steps between blocking calls
took p99 72 ms next to two threads running queries back to back, 54 ms with a 0.5 ms
switch interval, and 13.5 ms next to two processes running them (9 ms with no
queries). Workers keep the default priority: at niceness 10 the probe gained 3.5 ms,
but under load from other programs each query took up to 85 ms longer.

So the API hands each query to a :class:`WorkerPool`: ``api_query_workers`` processes
per API worker, each with its own opened :class:`~entrepot.exchange.node.Node` and
coordinator. The request awaits the answer without holding a thread. At most
``api_query_queue`` queries wait for a free process; beyond that the API answers 429
(:class:`QueueFull`) at once rather than letting waits grow without bound. Budgets and
refusal logging are the coordinator's, in the worker, against the same database and
transparency log as every other process of the node.

No account can take the processes from the others. Measured before these rules, 40
parallel refused queries from an account with no grant took another consumer's query
from p50 258 ms to 10.5 s: each refusal held the only process for the whole 250 ms
latency floor. Now:

- a query is first screened in the serving process (the coordinator's steps that read
  no data: dataset, contract, checker); a refusal never waits for a process;
- the latency floor is awaited here, after the process is free, never slept in it;
- one account has at most ``api_query_per_account`` queries running or waiting;
- one account's refusals are rate-limited (``api_refusals_per_minute``): past the limit
  its queries answer 429 without being screened, so it cannot flood the public log.

What crosses the boundary: in, the :class:`~entrepot.exchange.accounts.Actor` the
serving process resolved from the bearer token (a frozen record of ids; the client
supplies only the SQL, ε and purpose); out, the response body, validated and
serialized by the worker (the serving process only forwards bytes), or an error
rebuilt as the same class of :mod:`entrepot.errors` with the same body.

``api_query_workers = 0`` keeps queries in-process (:class:`InProcess`), at most
``api_query_concurrency`` at once in threads, with the same queue bound.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import wait
from typing import Any

import anyio.to_thread

from entrepot.api.limits import TokenBuckets
from entrepot.errors import EntrepotError, LimitExceeded, from_body
from entrepot.exchange.accounts import Actor
from entrepot.exchange.node import Node
from entrepot.exchange.query import Floor, Queries
from entrepot.settings import Settings

__all__ = ["InProcess", "QueryRunner", "QueueFull", "WorkerPool", "runner_for"]

_log = logging.getLogger("entrepot.api")

# Workers are forked from a forkserver that imported the query path once, so a new
# pool starts in milliseconds instead of importing it again (~2 s per process).
_PRELOAD = ["entrepot.api._query_workers", "entrepot.api.routers.queries"]
# A queued query answers 429 with this Retry-After: about the time a query takes.
_RETRY_AFTER_S = 1
# Refusals one account may have at once before the per-minute rate applies.
_REFUSAL_BURST = 20


class QueueFull(LimitExceeded):
    """Too many private queries are waiting for a worker: 429, retry shortly."""

    status = 429


# What a run gives back: its kind, its payload and the seconds still to wait for the
# latency floor (the caller awaits them, so the process is free meanwhile).
Outcome = tuple[str, Any, float]
# Turns ``QueryResult.to_dict()`` into the response body; a module-level function, so
# that a worker process can receive it.
Render = Callable[[dict[str, Any]], bytes]


@dataclass(frozen=True)
class Call:
    """One query to run: who asks (resolved by the server), what, and how to render it."""

    actor: Actor
    sql: str
    epsilon: float | None
    purpose: str | None
    render: Render


class Admitted:
    """A query's place among those in flight, given back when the query holds neither
    a process (which may outlive a cancelled request) nor its request (which waits for
    the latency floor after the process is free): at the later of two ``done()``."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._holders = 2
        self._lock = threading.Lock()

    def done(self, _future: object = None) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._release()


class QueryRunner(ABC):
    """Runs private queries for the API with bounded admission; see the module docstring."""

    slots: int

    def __init__(self, node: Node) -> None:
        self.settings = settings = node.settings
        self.queries = Queries(node)
        self._bound = self.slots + settings.api_query_queue
        self._in_flight = 0
        self._per_account: Counter[str] = Counter()
        self._refusals = TokenBuckets(settings.api_refusals_per_minute / 60, _REFUSAL_BURST)
        self._lock = threading.Lock()

    @abstractmethod
    async def start(self) -> None:
        """Get ready to answer; called once in the app's lifespan, before serving."""

    @abstractmethod
    def close(self) -> None:
        """Stop, after the queries already running have finished."""

    async def run(
        self,
        actor: Actor,
        sql: str,
        *,
        epsilon: float | None,
        purpose: str | None,
        render: Render,
    ) -> bytes:
        """The coordinator's result for ``actor``, rendered by ``render``; or its error."""
        # A refusal's token is taken before screening, so parallel queries cannot all
        # pass the check before the first refusal counts; anything else gives it back.
        self._take_refusal(actor)
        refused = False
        try:
            floor = Floor()
            try:
                await anyio.to_thread.run_sync(
                    partial(
                        self.queries.screen,
                        actor,
                        sql,
                        epsilon=epsilon,
                        purpose=purpose,
                        floor=floor,
                    )
                )
            except EntrepotError as refusal:
                refused = 400 <= refusal.status < 500
                await asyncio.sleep(floor.rest_s())
                raise
            admitted = self._admit(actor)
            try:
                kind, payload, rest_s = await self._outcome(
                    Call(actor, sql, epsilon, purpose, render), admitted
                )
                refused = kind == "error" and 400 <= from_body(payload).status < 500
                await asyncio.sleep(rest_s)
            finally:
                admitted.done()
        finally:
            if not refused:
                with self._lock:
                    self._refusals.give_back(actor.name)
        return _unwrap(kind, payload)

    def _take_refusal(self, actor: Actor) -> None:
        with self._lock:
            wait = self._refusals.take(actor.name)
        if wait:
            raise QueueFull(
                f"{actor.name} had more private queries refused than "
                f"{self.settings.api_refusals_per_minute:g} a minute allows",
                setting="api_refusals_per_minute",
                hint=f"fix the queries the last refusals named, and retry in {math.ceil(wait)} s",
                retry_after_s=math.ceil(wait),
            )

    @abstractmethod
    async def _outcome(self, call: Call, admitted: Admitted) -> Outcome:
        """Run one admitted query; calls ``admitted.done()`` once it holds no process."""

    def _admit(self, actor: Actor) -> Admitted:
        with self._lock:
            if self._per_account[actor.name] >= self.settings.api_query_per_account:
                raise QueueFull(
                    f"{actor.name} already has {self.settings.api_query_per_account} private "
                    "queries running or waiting on this server",
                    setting="api_query_per_account",
                    hint=f"wait for an answer before sending more, retry in {_RETRY_AFTER_S} s",
                    retry_after_s=_RETRY_AFTER_S,
                )
            if self._in_flight >= self._bound:
                raise QueueFull(
                    f"too many private queries in progress on this server "
                    f"({self.slots} running, {self.settings.api_query_queue} waiting)",
                    setting="api_query_queue",
                    hint=f"retry in {_RETRY_AFTER_S} s, or ask the operator to raise "
                    "ENTREPOT_API_QUERY_QUEUE or ENTREPOT_API_QUERY_WORKERS",
                    retry_after_s=_RETRY_AFTER_S,
                )
            self._in_flight += 1
            self._per_account[actor.name] += 1
        return Admitted(partial(self._release, actor.name))

    def _release(self, account: str) -> None:
        with self._lock:
            self._in_flight -= 1
            self._per_account[account] -= 1
            if not self._per_account[account]:
                del self._per_account[account]

    @property
    def in_flight(self) -> int:
        """Queries admitted and not finished: running or waiting."""
        with self._lock:
            return self._in_flight


class InProcess(QueryRunner):
    """Queries in this process's threads, ``api_query_concurrency`` at once."""

    def __init__(self, node: Node) -> None:
        self.slots = node.settings.api_query_concurrency
        super().__init__(node)
        self._slots = asyncio.Semaphore(self.slots)

    async def start(self) -> None:
        """Nothing to start: queries run in the server's own thread pool."""

    def close(self) -> None:
        """Nothing to stop: the server waits for its requests, and so for their queries."""

    async def _outcome(self, call: Call, admitted: Admitted) -> Outcome:
        try:
            async with self._slots:
                # Not cancellable: once the thread runs, the request waits for its end.
                outcome = await anyio.to_thread.run_sync(partial(_answer, self.queries, call))
        finally:
            admitted.done()
        return outcome


class WorkerPool(QueryRunner):
    """Queries in ``api_query_workers`` processes, each with its own opened node."""

    def __init__(self, node: Node) -> None:
        self.slots = node.settings.api_query_workers
        super().__init__(node)
        self._executor: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return ProcessPoolExecutor(
            self.slots, mp_context=context, initializer=_start_worker, initargs=(self.settings,)
        )

    async def start(self) -> None:
        """Start every worker and open its node, so a broken setup fails at start-up."""
        with self._pool_lock:
            self._executor = self._new_executor()
            # Each submission finds no idle worker yet, so each starts a process.
            started = [self._executor.submit(os.getpid) for _ in range(self.slots)]
        try:
            await asyncio.gather(*(asyncio.wrap_future(future) for future in started))
        except BrokenProcessPool:
            self.close()
            raise EntrepotError(
                "the query worker processes could not open the node; "
                "their error is in the server log above",
                hint="fix that error, or run queries in the server process with "
                "ENTREPOT_API_QUERY_WORKERS=0",
            ) from None

    def close(self) -> None:
        with self._pool_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for operators and tests)."""
        with self._pool_lock:
            processes = getattr(self._executor, "_processes", None) or {}
            return sorted(pid for pid, process in processes.items() if process.is_alive())

    async def _outcome(self, call: Call, admitted: Admitted) -> Outcome:
        with self._pool_lock:
            executor = self._executor
            if executor is None:
                admitted.done()
                raise EntrepotError(
                    "the server is not accepting private queries: it is starting or stopping",
                    hint="retry in a few seconds",
                )
            try:
                future: Future[Outcome] | None = executor.submit(_answer_in_worker, call)
            except BrokenProcessPool:
                # A worker died while idle. Replaced outside the lock, which _replace takes.
                future = None
        if future is None:
            admitted.done()
            raise self._replace(executor) from None
        # Done when the worker is, even if this request is cancelled meanwhile: a query
        # already running holds its process until it ends.
        future.add_done_callback(admitted.done)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            raise self._replace(executor) from None

    def _replace(self, broken: ProcessPoolExecutor) -> EntrepotError:
        """A worker died (killed, out of memory): start a fresh pool for the next queries."""
        with self._pool_lock:
            if self._executor is broken:
                _log.error("a query worker process died; starting a new pool")
                self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)
        return EntrepotError(
            "a query worker process stopped while this query was running or waiting",
            hint="retry the query; its budget was spent only if the data was touched, "
            "as the ledger and the transparency log show",
        )


def runner_for(node: Node) -> QueryRunner:
    """The runner the settings choose: a worker pool, or in-process threads with 0."""
    if node.settings.api_query_workers == 0:
        return InProcess(node)
    return WorkerPool(node)


# -- inside a worker process ---------------------------------------------------------

_queries: Queries | None = None


def _start_worker(settings: Settings) -> None:
    """Open the node once per worker; leave signals and lifetime to the serving process."""
    global _queries
    # Ctrl-C and SIGTERM reach the whole process group: the serving process shuts the
    # pool down after the queries in flight, which then still reach ledger and log.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _queries = Queries(Node.open(settings))
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """End this worker when the serving process is gone (killed without a shutdown)."""
    wait([sentinel])
    os._exit(0)


def _answer_in_worker(call: Call) -> Outcome:
    assert _queries is not None, "the worker initializer opens the node"
    return _answer(_queries, call)


def _answer(queries: Queries, call: Call) -> Outcome:
    """Run one query; errors become data, so any of them crosses a process boundary."""
    floor = Floor()
    try:
        result = queries.run(
            call.actor, call.sql, epsilon=call.epsilon, purpose=call.purpose, floor=floor
        )
        return "ok", call.render(result.to_dict()), floor.rest_s()
    except EntrepotError as error:
        return "error", error.to_dict()["error"], floor.rest_s()
    except Exception:
        _log.exception("unexpected error in a private query")
        return "crash", None, floor.rest_s()


def _unwrap(kind: str, payload: Any) -> bytes:
    if kind == "ok":
        answer: bytes = payload
        return answer
    if kind == "error":
        raise from_body(payload)
    raise EntrepotError(
        "internal error while running the query",
        hint="the server log has the details; report it if it persists",
    )
