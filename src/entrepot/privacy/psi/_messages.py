"""What crosses a holder's boundary: the two kinds of token batch, and the match.

Each token is 32 bytes (a ristretto255 element) and is tagged with an opaque handle
of the row it stands for: a number the row's own holder drew when it shuffled its
rows, which the holder alone can turn back into a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from entrepot.errors import InvalidInput
from entrepot.privacy.psi._group import TOKEN_BYTES

__all__ = ["BlindedBatch", "DoublyBlindedBatch", "Handles", "Match"]

Handles = npt.NDArray[np.uint64]


def _check(handles: Handles, tokens: bytes) -> None:
    if len(tokens) != len(handles) * TOKEN_BYTES:
        raise InvalidInput(
            f"{len(handles)} handles but {len(tokens)} bytes of tokens",
            hint=f"send one {TOKEN_BYTES}-byte token per handle",
        )


@dataclass(frozen=True)
class BlindedBatch:
    """Tokens blinded by their own holder only; sent to the other holder to reblind."""

    handles: Handles
    tokens: bytes

    def __post_init__(self) -> None:
        _check(self.handles, self.tokens)

    def __len__(self) -> int:
        return len(self.handles)


@dataclass(frozen=True)
class DoublyBlindedBatch:
    """Tokens blinded by both holders; sent by the reblinding holder to the matcher.

    ``handles`` are the rows of the holder that blinded first, not of the sender.
    """

    handles: Handles
    tokens: bytes

    def __post_init__(self) -> None:
        _check(self.handles, self.tokens)

    def __len__(self) -> int:
        return len(self.handles)


@dataclass(frozen=True)
class Match:
    """Matched pairs: ``left[i]`` (a handle of one side) and ``right[i]`` (of the other)."""

    left: Handles
    right: Handles

    def __len__(self) -> int:
        return len(self.left)

    @staticmethod
    def concat(parts: list[Match]) -> Match:
        empty = np.empty(0, dtype=np.uint64)
        return Match(
            left=np.concatenate([p.left for p in parts]) if parts else empty,
            right=np.concatenate([p.right for p in parts]) if parts else empty,
        )
