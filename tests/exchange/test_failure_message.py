"""A failure after the data was read answers one message, whichever step failed.

The engine's time limit stops a query at whatever step it has reached: the
aggregate of one dataset, or the blinding of a private join. A consumer told the
step apart would learn how far the data let the operation go, so both answer the
same status, code, message and hint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.exchange.join_world import CONSUMER, SQL, JoinWorld

import entrepot
from entrepot.errors import QueryFailed
from entrepot.settings import Settings

AGGREGATE = (
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)
D1, D2 = "910101", "910102"
# A limit that stops a query as it starts; one started before the engine sees the stop
# may still answer, so each query is asked until it fails, at another ε each time (the
# same ε would be answered by the earlier answer, without the engine).
TRIES = 40


def _failure(home: Path, sql: str) -> tuple[int, str, str, str]:
    settings = Settings(home=home, query_timeout_s=1e-9, token_hash_memory_kib=1024)
    with entrepot.connect(home, consumer=CONSUMER, settings=settings) as ex:
        for i in range(TRIES):
            try:
                ex.query(sql, epsilon=0.1 + i / 1000)
            except QueryFailed as failed:
                return failed.status, failed.code, failed.message, failed.hint or ""
    pytest.fail(f"no query of {TRIES} stopped at its time limit: {sql}")


def test_a_query_and_a_join_stopped_after_reading_answer_the_same_failure(
    tmp_path: Path,
) -> None:
    world = JoinWorld(tmp_path / "node")
    try:
        world.publish(
            [("AB0001", D1, "I"), ("AB0002", D2, "I")],
            [("AB0001", D1, 10.0), ("AB0002", D2, 20.0)],
        )
    finally:
        world.close()
    assert _failure(world.home, AGGREGATE) == _failure(world.home, SQL)
