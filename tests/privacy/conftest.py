"""Fixtures of the private-SQL tests: a seeded Parquet file and a real DuckDB engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from privacy_fixtures import visit_standard, write_visits

from entrepot.engine import DuckDBEngine
from entrepot.standards.schema import Standard


@pytest.fixture(scope="session")
def standard() -> Standard:
    return visit_standard()


@pytest.fixture(scope="session")
def visits_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_visits(tmp_path_factory.mktemp("visits") / "v1.parquet")


@pytest.fixture
def engine(visits_file: Path) -> Iterator[DuckDBEngine]:
    with DuckDBEngine(threads=1, memory_limit="512MB") as opened:
        assert isinstance(opened, DuckDBEngine)
        opened.register_parquet("visits_v1", [visits_file])
        opened.lock([visits_file.parent])
        yield opened
