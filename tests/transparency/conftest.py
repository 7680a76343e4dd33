from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from transparency_helpers import Clock

from entrepot.transparency import TransparencyLog


@pytest.fixture
def key() -> SigningKey:
    return SigningKey(bytes(range(32)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_log(
    tmp_path: Path, key: SigningKey, clock: Clock
) -> Iterator[Callable[..., TransparencyLog]]:
    opened: list[TransparencyLog] = []

    def factory(every: int = 1000, every_s: float = 3600.0) -> TransparencyLog:
        log = TransparencyLog(
            tmp_path / "log", key, head_every_entries=every, head_every_s=every_s, clock=clock
        )
        opened.append(log)
        return log

    yield factory
    for log in opened:
        log.close()
