"""The process pool that blinds on every core, and ordered streaming through it."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["Progress", "make_pool", "stream"]

T = TypeVar("T")

Progress = Callable[[int, int], None]

# Batches in flight per worker: two keep every worker busy while the parent
# collects results, and bound memory to a few batches per worker.
_IN_FLIGHT_PER_WORKER = 2


def make_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes (default: one per core).

    Workers start from a fork server that has imported the group module once, so a
    pool per join starts in milliseconds and never forks a threaded server process.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["entrepot.privacy.psi._group"])
    return ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=context)


def _workers(pool: Executor) -> int:
    return int(getattr(pool, "_max_workers", os.cpu_count() or 1))


def stream(
    pool: Executor,
    function: Callable[..., T],
    tasks: Iterable[tuple[Any, ...]],
) -> Iterator[T]:
    """``function(*task)`` for each task, in order, with a bounded number in flight."""
    window = _workers(pool) * _IN_FLIGHT_PER_WORKER
    pending: deque[Future[T]] = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(function, *task))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
