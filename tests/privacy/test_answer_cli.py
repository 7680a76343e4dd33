"""The CLI shows what an answer says about itself: groups near zero, averages without
a value, intervals about bounded data and the share bounding removed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from small_node import CONSUMER, small_node

from entrepot.standards import codelist

POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 50.0
latency_floor_ms: 0
coverage:
  district: {within: ["910100"]}
"""
SQL = (
    "SELECT district, COUNT(*) AS visits, AVG(cost) AS avg_cost "
    "FROM riverside_hospitals.outpatient_visits GROUP BY district"
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # every visit in one district of the five the coverage holds
    district = codelist("region.district").codes[0]
    base = tmp_path_factory.mktemp("cli")
    return small_node(base / "node", rows=400, districts=[district], policy=POLICY)


def _query(home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ("query", SQL, "--as", CONSUMER, "--home", str(home), "--epsilon", "0.2", *extra)
    return subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_cli_marks_groups_near_zero_and_says_what_bounding_removed(home: Path) -> None:
    text = " ".join(_query(home).stdout.split())
    assert "~ near zero" in text
    assert "group(s) near zero" in text
    assert "intervals are about the bounded data; bounding removed an estimated visits" in text
    body = json.loads(_query(home, "--json").stdout)["answer"]
    assert len(body["rows"]) == 5
    marked = [row for row in body["rows"] if row["near_zero"]]
    assert marked
    for row in marked:
        # a marked row's AVG keeps its value where its count's interval excludes 0
        value, lo, hi = row["values"][1]
        assert (lo, hi) == (0.0, 5000.0) if value is None else lo <= value <= hi
    assert body["interval_of"] == "bounded data"
    assert set(body["removed"]) == {"visits", "avg_cost"}
    # a tenth of ε for what bounding removed, half as much again for the cap's test
    assert body["removed_budget"] == pytest.approx(0.15)


BOUNDED = """
epsilon:
  per_query: 1.0
  dataset_cap: 50.0
latency_floor_ms: 0
contributions:
  rows_per_unit: 1
"""


def test_the_cli_shows_each_group_with_what_bounding_removed_put_back(
    tmp_path: Path,
) -> None:
    # 2,000 visits of about 1,000 patients, one row each counted: half the rows are
    # bounded away, a removed total far above its noise
    districts = codelist("region.district").codes[:4]
    home = small_node(tmp_path / "node", rows=2_000, districts=districts, policy=BOUNDED)
    sql = (
        "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
        "GROUP BY district"
    )
    args = ("query", sql, "--as", CONSUMER, "--home", str(home), "--epsilon", "1")
    env = {**os.environ, "COLUMNS": "200"}
    run = [sys.executable, "-m", "entrepot", *args]
    text = " ".join(
        subprocess.run(run, capture_output=True, text=True, check=True, env=env).stdout.split()
    )
    assert "visits, removed put back" in text
    assert "its interval about the question asked" in text
    body = json.loads(
        subprocess.run([*run, "--json"], capture_output=True, text=True, check=True).stdout
    )["answer"]
    shown = [row for row in body["rows"] if not row["near_zero"]]
    assert len(shown) == 4
    for row in shown:
        value, lo, hi = row["asked"][0]
        bounded = row["values"][0][0]
        # the put-back adds the group's part of the removed total: about as much again
        assert value > 1.5 * bounded
        assert lo <= value
        assert hi is None or value <= hi
    # about the 2,000 visits asked for: short of them by the rows of patients above the
    # removed total's cap and by the parts shared out to the near-zero groups (about
    # 1,890 in all); the removed total's noise (Laplace, of scale 30) carries it past
    # 2,400 with probability 10⁻⁸
    total = sum(row["asked"][0][0] for row in shown)
    assert 1.5 * sum(row["values"][0][0] for row in shown) < total < 2_400


def test_the_cli_answers_a_median_and_hides_it_where_a_group_is_near_zero(home: Path) -> None:
    sql = (
        "SELECT district, MEDIAN(cost), PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY cost) "
        "AS p90 FROM riverside_hospitals.outpatient_visits GROUP BY district"
    )
    args = ("query", sql, "--as", CONSUMER, "--home", str(home), "--epsilon", "0.5")
    shown = subprocess.run(
        [sys.executable, "-m", "entrepot", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "median_cost" in shown
    assert "p90" in shown
    assert "cost clamped to [0, 5000]" in " ".join(shown.split())
    body = json.loads(
        subprocess.run(
            [sys.executable, "-m", "entrepot", *args, "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["answer"]
    assert body["aggregates"] == ["median_cost", "p90"]
    assert len(body["rows"]) == 5
    for row in body["rows"]:
        for value, lo, hi in row["values"]:
            assert 0.0 <= lo <= hi <= 5000.0
            if not row["near_zero"]:
                assert value is not None
            assert (lo, hi) == (0.0, 5000.0) if value is None else lo <= value <= hi
    assert any(row["near_zero"] for row in body["rows"])


@pytest.mark.parametrize("columns", [60, 80])
def test_a_narrow_terminal_shows_every_figure_whole(home: Path, columns: int) -> None:
    sql = (
        "SELECT district, COUNT(*) AS visits, SUM(cost) AS total, AVG(cost) AS avg_cost "
        "FROM riverside_hospitals.outpatient_visits GROUP BY district"
    )
    args = ("query", sql, "--as", CONSUMER, "--home", str(home), "--epsilon", "0.3")
    run = [sys.executable, "-m", "entrepot", *args]
    env = {**os.environ, "COLUMNS": str(columns)}
    text = subprocess.run(run, capture_output=True, text=True, check=True, env=env).stdout
    # asked again, the same query gets the same answer, as JSON
    body = json.loads(
        subprocess.run([*run, "--json"], capture_output=True, text=True, check=True).stdout
    )
    assert body["repeated"]
    figures = [
        f"{x:,.2f}" if abs(x) < 1e6 else f"{x:,.0f}"
        for row in body["answer"]["rows"]
        for triple in row["values"]
        for x in triple
        if x is not None
    ]
    shown = re.findall(r"-?\d{1,3}(?:,\d{3})*(?:\.\d\d)?(?![\d…])", text)
    assert not Counter(figures) - Counter(shown), text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= columns
