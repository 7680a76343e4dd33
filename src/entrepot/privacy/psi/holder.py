"""One holder's side of one join: a fresh key, its shuffled rows, its blinded tokens."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from entrepot.errors import Conflict, LimitExceeded
from entrepot.privacy.psi._group import (
    TOKEN_BYTES,
    blind_batch,
    canonical_batch,
    random_key,
    reblind_batch,
)
from entrepot.privacy.psi._messages import BlindedBatch, DoublyBlindedBatch, Handles
from entrepot.privacy.psi._pool import stream
from entrepot.standards.linkkeys import concept

__all__ = ["BATCH_SIZE", "MAX_ROWS", "Holder", "InlineExecutor"]

T = TypeVar("T")

# About 0.3 s of one core per batch (70 µs a row): long enough to hide the pool's
# overhead, short enough that the last batches leave no core idle for long.
BATCH_SIZE = 4096

# Rows one side may blind in one join: 20M rows cost about 45 core-minutes and
# about 1 GB of handles and tokens.
MAX_ROWS = 20_000_000


class InlineExecutor(Executor):
    """Runs each task at once in this process: for small sets and tests."""

    _max_workers = 1

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def _take(values: Sequence[object], start: int, size: int) -> list[object]:
    batch = values[start : start + size]
    return list(batch.tolist() if isinstance(batch, np.ndarray) else batch)


class Holder:
    """A data holder's part in one private join.

    A holder draws a fresh secret scalar when it is made and never reuses it:
    make one holder per join. ``blind`` brings the link keys to their canonical
    form, drops malformed ones (counted in ``malformed``), keeps one token per
    distinct key (so nobody sees how many rows share a key) and sends them in a
    random order, blinded with this key; ``reblind`` multiplies the other holder's
    tokens by this key for the matcher; ``rows`` turns handles back into the row
    numbers of the values given to ``blind``. ``forget`` overwrites the key; a
    holder used as a context manager forgets it on exit.
    """

    def __init__(
        self,
        concept_name: str,
        *,
        pool: Executor | None = None,
        batch_size: int = BATCH_SIZE,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.concept = concept(concept_name).name
        self.malformed = 0
        self._pool = pool or InlineExecutor()
        self._batch_size = batch_size
        self._max_rows = max_rows
        self._key: bytearray | None = random_key()
        self._rows: np.ndarray | None = None
        self._bounds: np.ndarray | None = None

    def __enter__(self) -> Holder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.forget()

    def _secret(self) -> bytes:
        if self._key is None:
            raise Conflict(
                "this holder's key was forgotten when its join ended",
                hint="start a new join with a new holder: keys are never reused",
            )
        return bytes(self._key)

    def blind(self, values: Sequence[object]) -> Iterator[BlindedBatch]:
        """This holder's rows as singly-blinded tokens, in a random order, batch by batch.

        Refuses at once (not at the first batch) when the key is gone, the rows were
        blinded already or there are too many.
        """
        key = self._secret()
        if self._rows is not None:
            raise Conflict(
                "this holder has blinded its rows already",
                hint="start a new join with a new holder: keys are never reused",
            )
        if len(values) > self._max_rows:
            raise LimitExceeded(
                f"{len(values)} rows to blind, more than the limit of {self._max_rows}",
                setting="psi_max_rows",
                hint="a join blinds every row of its versions, whatever its WHERE: "
                "raise psi_max_rows to join this one",
            )
        keys: dict[str, int] = {}
        group = np.empty(len(values), dtype=np.int64)
        starts = range(0, len(values), self._batch_size)
        tasks = ((self.concept, _take(values, start, self._batch_size)) for start in starts)
        for start, canonical in zip(
            starts, stream(self._pool, canonical_batch, tasks), strict=True
        ):
            group[start : start + len(canonical)] = [
                -1 if c is None else keys.setdefault(c, len(keys)) for c in canonical
            ]
        self.malformed = int((group < 0).sum())
        # handle h stands for the distinct key number order[h]: a random order.
        order = np.random.default_rng(secrets.randbits(128)).permutation(len(keys))
        handle_of = np.empty(len(keys), dtype=np.int64)
        handle_of[order] = np.arange(len(keys))
        rows = np.flatnonzero(group >= 0)
        handles = handle_of[group[rows]]
        by_handle = np.argsort(handles, kind="stable")
        self._rows = rows[by_handle]
        self._bounds = np.searchsorted(handles[by_handle], np.arange(len(keys) + 1))
        distinct = list(keys)
        keys.clear()
        return self._blinded(key, [distinct[i] for i in order])

    def _blinded(self, key: bytes, distinct: list[str]) -> Iterator[BlindedBatch]:
        starts = range(0, len(distinct), self._batch_size)
        tasks = ((key, self.concept, distinct[s : s + self._batch_size]) for s in starts)
        blinded = stream(self._pool, blind_batch, tasks)
        for start, tokens in zip(starts, blinded, strict=True):
            count = len(tokens) // TOKEN_BYTES
            yield BlindedBatch(
                handles=np.arange(start, start + count, dtype=np.uint64), tokens=tokens
            )

    def reblind(self, batches: Iterable[BlindedBatch]) -> Iterator[DoublyBlindedBatch]:
        """The other holder's tokens, blinded again with this holder's key, for the matcher."""
        return self._reblinded(self._secret(), batches)

    def _reblinded(
        self, key: bytes, batches: Iterable[BlindedBatch]
    ) -> Iterator[DoublyBlindedBatch]:
        handles: deque[Handles] = deque()

        def tasks() -> Iterator[tuple[bytes, bytes]]:
            for batch in batches:
                handles.append(batch.handles)
                yield key, batch.tokens

        for tokens in stream(self._pool, reblind_batch, tasks()):
            yield DoublyBlindedBatch(handles=handles.popleft(), tokens=tokens)

    def rows(self, handles: Handles) -> tuple[np.ndarray, np.ndarray]:
        """The rows of each handle: how many each has, and their row numbers in turn.

        Row numbers are positions in the values given to ``blind``.
        """
        if self._rows is None or self._bounds is None:
            raise Conflict("this holder has not blinded any rows", hint="call blind first")
        at = np.asarray(handles, dtype=np.int64)
        low, high = self._bounds[at], self._bounds[at + 1]
        counts = high - low
        ends = np.cumsum(counts)
        picks = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts, counts)
        return counts, self._rows[picks + np.repeat(low, counts)]

    def kept(self) -> tuple[np.ndarray, Handles]:
        """Every row with a well-formed key and its handle, grouped by handle.

        Row numbers are positions in the values given to ``blind``.
        """
        if self._rows is None or self._bounds is None:
            raise Conflict("this holder has not blinded any rows", hint="call blind first")
        counts = np.diff(self._bounds)
        return self._rows, np.repeat(np.arange(len(counts), dtype=np.uint64), counts)

    def forget(self) -> None:
        """Overwrite the secret key; copies handed to libsodium were never kept."""
        if self._key is not None:
            self._key[:] = bytes(len(self._key))
            self._key = None
