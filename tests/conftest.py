from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from entrepot.exchange.node import Node
from entrepot.settings import Settings


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A fresh node on a real SQLite file in a temporary home."""
    opened = Node.init(Settings(home=tmp_path / "node"))
    yield opened
    opened.close()
