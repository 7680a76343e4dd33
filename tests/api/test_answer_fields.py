"""A private answer names its figures: each aggregate's value, low and high."""

from __future__ import annotations

import httpx
from tests.api.conftest import ACCOUNTS, World

from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import Accounts

SQL = (
    "SELECT district, COUNT(*), AVG(cost) FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)


def test_every_row_gives_its_figures_by_name_and_by_position(world: World) -> None:
    node = world.node
    consumer = Accounts(node.db, node.settings, log=node.log).actor(ACCOUNTS["consumer"][1])
    answer = LocalClient(Exchange(node), consumer).query(SQL, epsilon=1.0)["answer"]
    assert answer["rows"]
    for row in answer["rows"]:
        named = [[e["value"], e["low"], e["high"]] for e in row["estimates"]]
        assert named == row["values"]
        assert len(row["estimates"]) == len(answer["aggregates"])


def test_what_bounding_removed_and_the_asked_estimates_are_named_too(world: World) -> None:
    node = world.node
    consumer = Accounts(node.db, node.settings, log=node.log).actor(ACCOUNTS["consumer"][1])
    whole = "SELECT COUNT(*), SUM(cost) FROM riverside_hospitals.outpatient_visits"
    answer = LocalClient(Exchange(node), consumer).query(whole, epsilon=1.0)["answer"]
    # the removed share is always given; the put-back where it is told from zero
    assert set(answer["removed"]) == {"count", "sum_cost"}
    assert set(answer["removed_estimates"]) == set(answer["removed"])
    for aggregate, figures in answer["removed"].items():
        estimate = answer["removed_estimates"][aggregate]
        assert [estimate["value"], estimate["low"], estimate["high"]] == figures
    for row in answer["rows"]:
        assert len(row["asked"]) in (0, len(answer["aggregates"]))
        assert len(row["asked_estimates"]) == len(row["asked"])
        for figures, estimate in zip(row["asked"], row["asked_estimates"], strict=True):
            if figures is None:
                assert estimate is None
            else:
                assert [estimate["value"], estimate["low"], estimate["high"]] == figures


def test_the_contract_documents_the_named_figures(api: httpx.Client) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    estimates = schemas["AnswerRow"]["properties"]["estimates"]
    assert estimates["items"]["$ref"].endswith("/Estimate")
    assert set(schemas["Estimate"]["properties"]) == {"value", "low", "high"}
    asked = schemas["AnswerRow"]["properties"]["asked_estimates"]["items"]
    assert {"$ref": "#/components/schemas/Estimate"} in asked["anyOf"]
