"""Quantiles over HTTP: a median and a percentile per group, each with its interval
within the measure's bounds; other quantile spellings are refused by rule."""

from __future__ import annotations

import httpx
from tests.api.conftest import World

SQL = (
    "SELECT sex, MEDIAN(cost) AS median_cost, "
    "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY cost) AS p90, COUNT(*) AS visits "
    "FROM riverside_hospitals.outpatient_visits GROUP BY sex"
)


def test_a_consumer_gets_a_median_and_a_percentile_per_group(
    api: httpx.Client, world: World
) -> None:
    response = api.post(
        "/v1/queries", json={"sql": SQL, "epsilon": 1.0}, headers=world.auth("consumer")
    )
    assert response.status_code == 200, response.text
    answer = response.json()["answer"]
    assert answer["aggregates"] == ["median_cost", "p90", "visits"]
    assert [row["key"] for row in answer["rows"]] == [["0"], ["1"], ["2"], ["9"]]
    for row in answer["rows"]:
        for estimate in row["estimates"][:2]:
            assert 0.0 <= estimate["low"] <= estimate["high"] <= 5000.0
            if estimate["value"] is not None:
                assert estimate["low"] <= estimate["value"] <= estimate["high"]
    assert answer["scales"]["median_cost"] > 0
    assert "cost clamped to [0, 5000]" in answer["notes"]
    assert any(note.startswith("cost quantiles chosen among ") for note in answer["notes"])
    assert response.json()["epsilon_spent"] == 1.0


def test_a_discrete_quantile_is_refused_by_the_quantile_rule(
    api: httpx.Client, world: World
) -> None:
    response = api.post(
        "/v1/queries",
        json={"sql": "SELECT QUANTILE_DISC(cost, 0.5) FROM riverside_hospitals.outpatient_visits"},
        headers=world.auth("consumer"),
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["rule"]) == ("policy_violation", "quantile")
    assert "MEDIAN(cost)" in error["hint"]
