"""Fixtures of the private-SQL tests: a seeded Parquet file and its standard."""

from __future__ import annotations

from pathlib import Path

import pytest
from privacy_fixtures import visit_standard, write_visits

from entrepot.standards.schema import Standard


@pytest.fixture(scope="session")
def standard() -> Standard:
    return visit_standard()


@pytest.fixture(scope="session")
def visits_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_visits(tmp_path_factory.mktemp("visits") / "v1.parquet")
