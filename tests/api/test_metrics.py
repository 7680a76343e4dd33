"""`/metrics` and the access log: what they count, and that they say no more than the log."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.api.conftest import World, build_world, running

from entrepot.api import create_app
from entrepot.api.metrics import ACCESS_LOGGER
from entrepot.exchange.node import Node
from entrepot.settings import Settings

SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(api: httpx.Client, world: World) -> Samples:
    scraped = api.get("/metrics", headers=world.auth("auditor"))
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
    }


def test_metrics_are_for_operators_and_auditors(api: httpx.Client, world: World) -> None:
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers=world.auth("consumer")).status_code == 403
    assert api.get("/metrics", headers=world.auth("operator")).status_code == 200


def test_private_operations_and_epsilon_are_what_the_public_log_states(
    api: httpx.Client, world: World
) -> None:
    auth = world.auth("consumer")
    for body in (
        {"sql": SQL, "epsilon": 0.5},
        {"sql": SQL, "epsilon": 0.5},  # the same question: the stored answer, repeated
        {"sql": SQL, "epsilon": 0.25},
        {"sql": "SELECT * FROM riverside_hospitals.outpatient_visits", "epsilon": 0.5},
    ):
        api.post("/v1/queries", json=body, headers=auth)
    found = samples(api, world)
    listed = api.get("/v1/audit/entries", headers=auth, params={"limit": 100}).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    logged = [item["entry"] for item in items]
    operations = [e for e in logged if e["kind"] in ("query", "join", "release")]
    counted: dict[tuple[str, str], int] = {}
    for entry in operations:
        key = (entry["kind"], entry["outcome"])
        counted[key] = counted.get(key, 0) + 1
    metric = {
        (dict(labels)["kind"], dict(labels)["outcome"]): int(value)
        for (name, labels), value in found.items()
        if name == "entrepot_private_operations_total"
    }
    assert metric == counted
    assert counted == {("query", "answered"): 2, ("query", "repeated"): 1, ("query", "refused"): 1}
    spent = sum(Decimal(e.get("epsilon", "0")) for e in operations)
    assert found[("entrepot_epsilon_spent_total", ())] == pytest.approx(float(spent))
    assert spent == Decimal("0.75")


def test_requests_are_counted_by_route_template(api: httpx.Client, world: World) -> None:
    auth = world.auth("consumer")
    for dataset in ("riverside-hospitals/outpatient-visits", "harbor-clinics/outpatient-visits"):
        assert api.get(f"/v1/catalog/datasets/{dataset}", headers=auth).status_code == 200
    api.get("/no/such/place-with-a-secret")
    found = samples(api, world)
    route = ("route", "/v1/catalog/datasets/{provider}/{dataset}")
    key = (("method", "GET"), route, ("status", "200"))
    assert found[("entrepot_http_requests_total", key)] == 2
    count = found[("entrepot_http_request_duration_seconds_count", (("method", "GET"), route))]
    assert count == 2
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert found[("entrepot_http_requests_total", unmatched)] == 1
    labels = {value for _name, labelled in found for _key, value in labelled}
    assert not any("secret" in value or "riverside" in value for value in labels)


def test_the_access_log_names_the_route_never_the_token_or_query(
    api: httpx.Client, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.tokens["consumer"]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        api.get(
            "/v1/catalog/datasets/riverside-hospitals/outpatient-visits",
            params={"q": "SELECT secret"},
            headers=world.auth("consumer"),
        )
        api.post("/v1/queries", json={"sql": SQL, "epsilon": 0.1}, headers=world.auth("consumer"))
        api.get("/v1/me", headers={"Authorization": "Bearer ent_wrongwrong_secret"})
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert lines[0].startswith(
        "method=GET route=/v1/catalog/datasets/{provider}/{dataset} status=200 duration_ms="
    )
    assert lines[1].startswith("method=POST route=/v1/queries status=200 ")
    assert lines[2].startswith("method=GET route=/v1/me status=401 ")
    text = "\n".join(lines)
    for secret in (token, token.split("_")[1], "wrongwrong", "SELECT", "riverside", "district"):
        assert secret not in text


def test_a_request_a_limit_refuses_is_counted_under_its_route(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "node",
        token_hash_memory_kib=1024,
        rate_limit_burst=1,
        rate_limit_per_s=0.01,
    )
    node = Node.init(settings)
    try:
        world = build_world(node)
        with running(create_app(node)) as api:
            auth = world.auth("consumer")
            statuses = [
                api.get("/v1/catalog/datasets/a-b/c-d", headers=auth).status_code for _ in range(3)
            ]
            assert statuses[1:] == [429, 429]
            metrics = api.get("/metrics", headers=world.auth("auditor")).text
    finally:
        node.close()
    route = 'route="/v1/catalog/datasets/{provider}/{dataset}"'
    assert f'entrepot_http_requests_total{{method="GET",{route},status="429"}} 2.0' in metrics
