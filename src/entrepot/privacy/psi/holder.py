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
from entrepot.privacy.psi._group import blind_batch, random_key, reblind_batch
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


def _take(values: Sequence[object], rows: np.ndarray) -> list[object]:
    if isinstance(values, np.ndarray):
        return list(values[rows].tolist())
    return [values[int(row)] for row in rows]


class Holder:
    """A data holder's part in one private join.

    A holder draws a fresh secret scalar when it is made and never reuses it:
    make one holder per join. ``blind`` shuffles the rows, drops malformed values
    (counted in ``malformed``) and sends the rest as tokens blinded with this key;
    ``reblind`` multiplies the other holder's tokens by this key for the matcher;
    ``rows`` turns matched handles back into row numbers of the values given to
    ``blind``. ``forget`` overwrites the key; a holder used as a context manager
    forgets it on exit.
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
        self._order: Handles | None = None

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
        if self._order is not None:
            raise Conflict(
                "this holder has blinded its rows already",
                hint="start a new join with a new holder: keys are never reused",
            )
        if len(values) > self._max_rows:
            raise LimitExceeded(
                f"{len(values)} rows to blind, more than the limit of {self._max_rows}",
                setting="psi_max_rows",
                hint="narrow the join with a WHERE clause, or raise psi_max_rows",
            )
        order = np.random.default_rng(secrets.randbits(128)).permutation(len(values))
        self._order = order.astype(np.uint64)
        return self._blinded(key, values, order)

    def _blinded(
        self, key: bytes, values: Sequence[object], order: np.ndarray
    ) -> Iterator[BlindedBatch]:
        starts = range(0, len(values), self._batch_size)
        tasks = (
            (key, self.concept, _take(values, order[start : start + self._batch_size]))
            for start in starts
        )
        blinded = stream(self._pool, blind_batch, tasks)
        for start, (kept, tokens) in zip(starts, blinded, strict=True):
            self.malformed += min(self._batch_size, len(values) - start) - len(kept)
            yield BlindedBatch(handles=kept.astype(np.uint64) + np.uint64(start), tokens=tokens)

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

    def rows(self, handles: Handles) -> np.ndarray:
        """Row numbers (positions in the values given to ``blind``) of this holder's handles."""
        if self._order is None:
            raise Conflict("this holder has not blinded any rows", hint="call blind first")
        return self._order[np.asarray(handles, dtype=np.uint64)].astype(np.int64)

    def forget(self) -> None:
        """Overwrite the secret key; copies handed to libsodium were never kept."""
        if self._key is not None:
            self._key[:] = bytes(len(self._key))
            self._key = None
