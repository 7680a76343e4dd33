"""A whole private set intersection between two holders, run in one place.

The coordinator of a join sends these same messages between holders that may live
on other nodes; :func:`intersect` runs them here, in order, for a join whose two
sides are both local (and for tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from entrepot.privacy.psi._messages import Match
from entrepot.privacy.psi._pool import Progress, make_pool
from entrepot.privacy.psi.holder import BATCH_SIZE, MAX_ROWS, Holder
from entrepot.privacy.psi.matcher import Matcher

__all__ = ["Intersection", "intersect"]

B = TypeVar("B", bound=Sized)


@dataclass(frozen=True)
class Intersection:
    """Matched row pairs: row ``left[i]`` of the left values and ``right[i]`` of the right."""

    left: np.ndarray
    right: np.ndarray
    left_malformed: int
    right_malformed: int

    def __len__(self) -> int:
        return len(self.left)


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self._progress = 0, total, progress

    def count(self, batches: Iterable[B]) -> Iterator[B]:
        for batch in batches:
            yield batch
            self.done += len(batch)
            if self._progress is not None:
                self._progress(min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress(self.total, self.total)


def _pairs(
    left: tuple[np.ndarray, np.ndarray], right: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Every (left row, right row) of each matched key: its m rows × its n rows."""
    (m, left_rows), (n, right_rows) = left, right
    size = m * n
    match = np.repeat(np.arange(len(m)), size)
    ends = np.cumsum(size)
    within = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - size, size)
    left_at = (np.cumsum(m) - m)[match] + within // n[match]
    right_at = (np.cumsum(n) - n)[match] + within % n[match]
    return left_rows[left_at], right_rows[right_at]


def intersect(
    left: Sequence[object],
    right: Sequence[object],
    concept_name: str,
    *,
    pool: Executor | None = None,
    batch_size: int = BATCH_SIZE,
    max_rows: int = MAX_ROWS,
    progress: Progress | None = None,
) -> Intersection:
    """The pairs of rows whose link keys are equal once canonicalized.

    Each side is blinded by a fresh holder, reblinded by the other, and the matcher
    indexes the smaller side. ``pool`` runs the group operations (default: a process
    pool with one worker per core, for this join only). ``progress(done, total)`` is
    called after each batch, counting rows blinded and tokens reblinded.
    """
    counter = _Counter(2 * (len(left) + len(right)), progress)
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(make_pool())
        first = stack.enter_context(
            Holder(concept_name, pool=pool, batch_size=batch_size, max_rows=max_rows)
        )
        second = stack.enter_context(
            Holder(concept_name, pool=pool, batch_size=batch_size, max_rows=max_rows)
        )
        swap = len(right) < len(left)
        small, large = (right, left) if swap else (left, right)
        matcher = Matcher(counter.count(second.reblind(counter.count(first.blind(small)))))
        match = Match.concat(
            [
                matcher.match(batch)
                for batch in counter.count(first.reblind(counter.count(second.blind(large))))
            ]
        )
        counter.finish()
        small_rows, large_rows = _pairs(first.rows(match.left), second.rows(match.right))
        return Intersection(
            left=large_rows if swap else small_rows,
            right=small_rows if swap else large_rows,
            left_malformed=second.malformed if swap else first.malformed,
            right_malformed=first.malformed if swap else second.malformed,
        )
