"""Over HTTP: a publish answers its private rows-per-unit bound, the rows it keeps and
removes and their ε, every reader sees the bound in the versions and the policy, an
average states the version's removed share, and a provider's own bound wins in
queries."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.api.conftest import World
from tests.e2e.test_unit_bounds import skewed_visits

from entrepot.privacy import parse_policy, plan
from entrepot.privacy.bounds import CANDIDATES, Removal
from entrepot.standards import get

DATASET = "riverside-hospitals/outpatient-visits"
FORM = {"standard": "health.visit", "title": "Outpatient visits 2025", "on_error": "reject"}
SQL = "SELECT COUNT(*) AS n FROM riverside_hospitals.outpatient_visits"
AVG = "SELECT AVG(cost) AS c FROM riverside_hospitals.outpatient_visits"


def test_the_bound_and_its_epsilon_over_http_and_a_provider_bound_wins(
    world: World, api: httpx.Client, tmp_path: Path
) -> None:
    data = skewed_visits(tmp_path / "visits.csv").read_bytes()
    published = api.post(
        "/v1/datasets",
        data={**FORM, "dataset": "outpatient-visits"},
        files={"file": ("visits.csv", data, "text/csv")},
        headers=world.auth("provider"),
    )
    assert published.status_code == 201, published.text
    body = published.json()
    bound, number = body["unit_bound"], body["version"]
    assert bound in CANDIDATES
    # bound_epsilon for the bound, as much again for the rows it keeps and removes
    assert body["bound_epsilon"] == pytest.approx(0.2)
    kept, removed, scale = body["unit_kept"], body["unit_removed"], body["unit_removed_scale"]
    assert scale == pytest.approx(4 * bound / 0.1)

    # released with differential privacy: a consumer reads the bound too, not the rows
    versions = api.get(f"/v1/datasets/{DATASET}/versions", headers=world.auth("consumer")).json()[
        "items"
    ]
    assert (versions[-1]["unit_bound"], versions[-1]["rows"]) == (bound, None)
    assert (versions[-1]["unit_kept"], versions[-1]["unit_removed"]) == (None, None)
    shown = api.get(f"/v1/policies/{DATASET}", headers=world.auth("consumer")).json()
    assert shown["bound"]["rows_per_unit"] == bound
    assert (shown["bound"]["source"], shown["bound"]["version"]) == ("estimate", number)

    answer = api.post("/v1/queries", json={"sql": SQL}, headers=world.auth("consumer"))
    assert answer.status_code == 200, answer.text
    notes = " ".join(answer.json()["answer"]["notes"])
    assert f"at most {bound} rows in total, grouped or not (estimated privately" in notes
    # a count buys its own removed share where the rows the version released as removed
    # could be told from zero at the answer's noise: not where the bound drawn lands
    # far above most units' rows and their noisy removed rows low (one publish in 600
    # here); the same plan made from the released figures says which
    standard = get("health.visit")
    expected = plan(
        SQL,
        standard=standard,
        policy=parse_policy({}, standard),
        dataset="riverside_hospitals.outpatient_visits",
        estimate=bound,
        removed=Removal(kept, removed, scale),
    )
    assert answer.json()["answer"]["removed_of"] == (
        "answer" if expected.removed_at_publish is None else "version"
    )

    # an average cannot put back what bounding removed: it states the version's share,
    # released at publish, and spends none of its own ε on one
    average = api.post("/v1/queries", json={"sql": AVG}, headers=world.auth("consumer"))
    assert average.status_code == 200, average.text
    said = average.json()["answer"]
    assert (said["removed_of"], said["removed_budget"]) == ("version", 0.0)
    share = Removal(kept, removed, scale).share()
    assert said["removed"]["c"] == pytest.approx([share.value, share.lo, share.hi])
    assert "of the version's rows" in " ".join(said["notes"])

    document = "latency_floor_ms: 0\ncontributions:\n  rows_per_unit: 7\n"
    put = api.put(
        f"/v1/policies/{DATASET}", json={"document": document}, headers=world.auth("provider")
    )
    assert put.status_code == 200, put.text
    assert put.json()["bound"]["source"] == "policy"
    answer = api.post("/v1/queries", json={"sql": SQL}, headers=world.auth("consumer"))
    notes = " ".join(answer.json()["answer"]["notes"])
    assert "at most 7 rows in total, grouped or not (the dataset's policy)" in notes
    # the version's share is that of its own bound: under another, the answer pays
    said = api.post("/v1/queries", json={"sql": AVG}, headers=world.auth("consumer")).json()
    assert (said["answer"]["removed_of"], said["answer"]["removed_budget"]) == ("answer", 0.1)
