"""A policy document nested too deep is refused as invalid input, not a server error."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from tests.api.conftest import DATASETS

if TYPE_CHECKING:
    from tests.api.conftest import World

POLICY = f"/v1/policies/{DATASETS['provider']}"


@pytest.mark.parametrize(
    "document",
    [
        "[" * 5000 + "]" * 5000,
        "threshold: " + "{a: " * 5000 + "1" + "}" * 5000,
        "".join("  " * level + "k:\n" for level in range(200)) + "  " * 200 + "v\n",
    ],
    ids=["flow_lists", "flow_mappings", "block_mappings"],
)
def test_a_deeply_nested_policy_is_refused_with_the_limit(
    world: World, api: httpx.Client, document: str
) -> None:
    response = api.put(POLICY, json={"document": document}, headers=world.auth("provider"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "nested more than 32 levels deep" in error["message"]
    assert error["hint"]
    unchanged = api.get(POLICY, headers=world.auth("provider")).json()
    assert unchanged["explicit"] is False


def test_a_policy_of_ordinary_depth_is_still_set(world: World, api: httpx.Client) -> None:
    document = "threshold: 12\ncolumns:\n  where: [district, sex]\n"
    response = api.put(POLICY, json={"document": document}, headers=world.auth("provider"))
    assert response.status_code == 200
    assert response.json()["policy"]["threshold"] == 12
