"""Fixtures for vault tests: raw health.visit files and the standard."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.vault.visits import WriteVisits, write_visits_csv

from entrepot.standards import Standard, get


@pytest.fixture
def write_visits(tmp_path: Path) -> WriteVisits:
    """Write a health.visit CSV of ``rows`` rows (``bad`` of them invalid) and return it."""

    def write(rows: int, *, bad: int = 0, name: str = "visits.csv", seed: int = 7) -> Path:
        return write_visits_csv(tmp_path / name, rows, bad=bad, seed=seed)

    return write


@pytest.fixture(scope="session")
def visit_standard() -> Standard:
    return get("health.visit")
