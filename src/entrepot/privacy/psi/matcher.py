"""The matcher: pairs the doubly-blinded tokens of two holders, seeing nothing else."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from entrepot.privacy.psi._group import TOKEN_BYTES
from entrepot.privacy.psi._messages import DoublyBlindedBatch, Match

__all__ = ["Matcher"]


def _rows(tokens: bytes) -> np.ndarray:
    return np.frombuffer(tokens, dtype=np.uint8).reshape(-1, TOKEN_BYTES)


class Matcher:
    """An index of one side's doubly-blinded tokens, matched batch by batch to the other's.

    Index the smaller side: memory is 40 bytes per indexed token, and the other side
    streams through in batches. Every pair of equal tokens is a match (an inner join:
    a value on m rows of one side and n of the other gives m × n pairs).
    """

    def __init__(self, indexed: Iterable[DoublyBlindedBatch]) -> None:
        batches = list(indexed)
        tokens = np.concatenate(
            [_rows(b.tokens) for b in batches] or [np.empty((0, TOKEN_BYTES), np.uint8)]
        )
        handles = np.concatenate([b.handles for b in batches] or [np.empty(0, np.uint64)])
        # Tokens are uniform group elements: their first 8 bytes make a sort key that
        # almost never collides; equality is still checked on all 32.
        keys = tokens[:, :8].copy().view("<u8").ravel()
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._tokens = tokens[order]
        self._handles = handles[order]

    def __len__(self) -> int:
        return len(self._handles)

    def match(self, batch: DoublyBlindedBatch) -> Match:
        """Pairs (indexed handle, handle of ``batch``) of equal tokens."""
        tokens = _rows(batch.tokens)
        keys = tokens[:, :8].copy().view("<u8").ravel()
        low = np.searchsorted(self._keys, keys, side="left")
        counts = np.searchsorted(self._keys, keys, side="right") - low
        probe = np.repeat(np.arange(len(keys)), counts)
        ends = np.cumsum(counts)
        candidate = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - counts, counts)
        candidate += np.repeat(low, counts)
        equal = (self._tokens[candidate] == tokens[probe]).all(axis=1)
        return Match(left=self._handles[candidate[equal]], right=batch.handles[probe[equal]])
