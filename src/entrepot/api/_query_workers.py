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

- a query is first screened in a process of its own (the coordinator's steps that read
  no data: dataset, contract, checker); a refusal never waits for a query process, and
  the serving process keeps its interpreter (screening there, about 5 ms of Python a
  query, took a concurrent search's p99 from 22 to 396 ms under the API benchmark);
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
import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import wait
from typing import Any

import anyio.to_thread

from entrepot.api.limits import TokenBuckets
from entrepot.errors import EntrepotError, LimitExceeded, from_body
from entrepot.exchange.accounts import Actor
from entrepot.exchange.facade import Exchange
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
    # When the server took the query (time.monotonic(): one clock for every process on
    # Linux), so that screening counts toward the latency floor like the rest.
    started: float = field(default_factory=time.monotonic)


# One step of the coordinator for a call, run where the runner puts it: a module-level
# function, so that a worker process can receive it.
Step = Callable[[Queries, "Call"], Outcome]


class Admitted:
    """A query's place among those in flight, given back once the query holds neither
    a process (which may outlive a cancelled request) nor its request (which waits for
    the latency floor after the process is free): when both are ``done``."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._held = {"process", "request"}
        self._lock = threading.Lock()

    def done(self, holder: str) -> None:
        with self._lock:
            if holder not in self._held:
                return
            self._held.discard(holder)
            last = not self._held
        if last:
            self._release()


class QueryRunner(ABC):
    """Runs private queries for the API with bounded admission; see the module docstring."""

    slots: int

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
        # A refusal's token is taken first, so parallel queries cannot all pass the
        # check before the first refusal counts; anything but a refusal gives it back.
        self._take_refusal(actor)
        refused = False
        try:
            call = Call(actor, sql, epsilon, purpose, render)
            admitted = self._admit(actor)
            try:
                try:
                    kind, payload, rest_s = await self._screen(call)
                except BaseException:
                    admitted.done("process")
                    raise
                if kind != "ok":
                    admitted.done("process")
                else:
                    kind, payload, rest_s = await self._outcome(call, admitted)
                    await asyncio.sleep(rest_s)
                    rest_s = 0.0
            finally:
                admitted.done("request")
            refused = kind == "error" and 400 <= from_body(payload).status < 500
            # A refusal's floor is awaited holding no place among the queries in flight.
            await asyncio.sleep(rest_s)
        finally:
            if not refused:
                with self._lock:
                    self._refusals.give_back(_account_of(actor))
        return _unwrap(kind, payload)

    def _take_refusal(self, actor: Actor) -> None:
        with self._lock:
            wait = self._refusals.take(_account_of(actor))
        if wait:
            raise QueueFull(
                f"{_account_of(actor)} had more private queries refused than "
                f"{self.settings.api_refusals_per_minute:g} a minute allows",
                setting="api_refusals_per_minute",
                hint=f"fix the queries the last refusals named, and retry in {math.ceil(wait)} s",
                retry_after_s=math.ceil(wait),
            )

    @abstractmethod
    async def _screen(self, call: Call) -> Outcome:
        """The coordinator's steps that read no data, away from any query process."""

    @abstractmethod
    async def _outcome(self, call: Call, admitted: Admitted) -> Outcome:
        """Run one screened query; marks ``admitted`` done for ``"process"`` once it
        holds no process."""

    def _admit(self, actor: Actor) -> Admitted:
        account = _account_of(actor)
        with self._lock:
            if self._per_account[account] >= self.settings.api_query_per_account:
                raise QueueFull(
                    f"{account} already has {self.settings.api_query_per_account} private "
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
            self._per_account[account] += 1
        return Admitted(partial(self._release, account))

    def _release(self, account: str) -> None:
        with self._lock:
            self._in_flight -= 1
            self._per_account[account] -= 1
            if not self._per_account[account]:
                del self._per_account[account]

    @property
    def in_flight(self) -> int:
        """Queries admitted and not finished: screened, running, waiting or padded."""
        with self._lock:
            return self._in_flight


class InProcess(QueryRunner):
    """Queries in this process's threads, ``api_query_concurrency`` at once."""

    def __init__(self, exchange: Exchange) -> None:
        self.slots = exchange.settings.api_query_concurrency
        super().__init__(exchange.settings)
        self.queries = exchange.queries
        self._slots = asyncio.Semaphore(self.slots)

    async def start(self) -> None:
        """Nothing to start: queries run in the server's own thread pool."""

    def close(self) -> None:
        """Nothing to stop: the server waits for its requests, and so for their queries."""

    async def _screen(self, call: Call) -> Outcome:
        return await anyio.to_thread.run_sync(partial(_screen, self.queries, call))

    async def _outcome(self, call: Call, admitted: Admitted) -> Outcome:
        try:
            async with self._slots:
                # Not cancellable: once the thread runs, the request waits for its end.
                return await anyio.to_thread.run_sync(partial(_answer, self.queries, call))
        finally:
            admitted.done("process")


class _Processes:
    """Worker processes of one kind, each with its own opened node; a pool that loses
    a process (killed, out of memory) is replaced for the next calls."""

    def __init__(self, size: int, settings: Settings, what: str) -> None:
        self.size = size
        self.settings = settings
        self.what = what
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _new(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return ProcessPoolExecutor(
            self.size, mp_context=context, initializer=_start_worker, initargs=(self.settings,)
        )

    async def start(self) -> None:
        with self._lock:
            self._executor = self._new()
            # Each submission finds no idle worker yet, so each starts a process.
            started = [self._executor.submit(os.getpid) for _ in range(self.size)]
        await asyncio.gather(*(asyncio.wrap_future(future) for future in started))

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            processes = getattr(self._executor, "_processes", None) or {}
            return sorted(pid for pid, process in processes.items() if process.is_alive())

    async def run(self, step: Step, call: Call, done: Callable[[], None]) -> Outcome:
        """``step(queries, call)`` in one of the processes; ``done()`` once it holds none
        (when the process is done, even if the caller was cancelled meanwhile)."""
        with self._lock:
            executor = self._executor
            if executor is None:
                done()
                raise EntrepotError(
                    "the server is not accepting private queries: it is starting or stopping",
                    hint="retry in a few seconds",
                )
            future: Future[Outcome] | None = None
            with contextlib.suppress(BrokenProcessPool):
                # A process died while idle: replaced below, outside the lock.
                future = executor.submit(_in_worker, step, call)
        if future is None:
            done()
            raise self._replace(executor) from None
        future.add_done_callback(lambda _: done())
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            raise self._replace(executor) from None

    def _replace(self, broken: ProcessPoolExecutor) -> EntrepotError:
        with self._lock:
            if self._executor is broken:
                _log.error("a %s process died; starting a new pool", self.what)
                self._executor = self._new()
        broken.shutdown(wait=False, cancel_futures=True)
        return EntrepotError(
            f"a {self.what} process stopped while this query was running or waiting",
            hint="retry the query; its budget was spent only if the data was touched, "
            "as the ledger and the transparency log show",
        )


class WorkerPool(QueryRunner):
    """Queries in ``api_query_workers`` processes, screened in one more process."""

    def __init__(self, settings: Settings) -> None:
        self.slots = settings.api_query_workers
        super().__init__(settings)
        self._queries = _Processes(self.slots, settings, "query worker")
        self._screens = _Processes(1, settings, "query screening")

    async def start(self) -> None:
        """Start every worker and open its node, so a broken setup fails at start-up."""
        try:
            await asyncio.gather(self._queries.start(), self._screens.start())
        except BrokenProcessPool:
            self.close()
            raise EntrepotError(
                "the query worker processes could not open the node; "
                "their error is in the server log above",
                hint="fix that error, or run queries in the server process with "
                "ENTREPOT_API_QUERY_WORKERS=0",
            ) from None

    def close(self) -> None:
        self._screens.close()
        self._queries.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live query workers (for operators and tests)."""
        return self._queries.pids

    async def _screen(self, call: Call) -> Outcome:
        return await self._screens.run(_screen, call, lambda: None)

    async def _outcome(self, call: Call, admitted: Admitted) -> Outcome:
        return await self._queries.run(_answer, call, partial(admitted.done, "process"))


def runner_for(exchange: Exchange) -> QueryRunner:
    """The runner the settings choose: a worker pool, or in-process threads with 0."""
    if exchange.settings.api_query_workers == 0:
        return InProcess(exchange)
    return WorkerPool(exchange.settings)


# -- inside a worker process ---------------------------------------------------------

_queries: Queries | None = None


def _start_worker(settings: Settings) -> None:
    """Open the node once per worker; leave signals and lifetime to the serving process."""
    global _queries
    # Ctrl-C and SIGTERM reach the whole process group: the serving process shuts the
    # pool down after the queries in flight, which then still reach ledger and log.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _queries = Exchange(Node.open(settings)).queries
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """End this worker when the serving process is gone (killed without a shutdown)."""
    wait([sentinel])
    os._exit(0)


def _in_worker(step: Step, call: Call) -> Outcome:
    assert _queries is not None, "the worker initializer opens the node"
    return step(_queries, call)


def _answer(queries: Queries, call: Call) -> Outcome:
    """Run one query: the response body, or the error as data."""
    return _caught(
        call,
        lambda floor: call.render(
            queries.run(
                call.actor, call.sql, epsilon=call.epsilon, purpose=call.purpose, floor=floor
            ).to_dict()
        ),
    )


def _screen(queries: Queries, call: Call) -> Outcome:
    """Run the coordinator's steps that read no data: ``None``, or the refusal as data."""
    return _caught(
        call,
        lambda floor: queries.screen(
            call.actor, call.sql, epsilon=call.epsilon, purpose=call.purpose, floor=floor
        ),
    )


def _caught(call: Call, work: Callable[[Floor], Any]) -> Outcome:
    """What ``work`` returns, with the floor still to wait; errors become data, so
    that any of them crosses a process boundary."""
    floor = Floor(started=call.started)
    try:
        return "ok", work(floor), floor.rest_s()
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


def _account_of(actor: Actor) -> str:
    """The account the per-account limits count (the log names its organization)."""
    return f"account:{actor.account}" if actor.account else actor.name
