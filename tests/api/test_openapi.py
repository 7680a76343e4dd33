"""The OpenAPI document is a contract a client can be generated from."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

import entrepot.errors
from entrepot.api.openapi import component_name, example_of
from entrepot.errors import EntrepotError

PAGE = {"items", "total", "limit", "offset", "next_offset"}


@pytest.fixture
def document(api: httpx.Client) -> dict[str, Any]:
    found: dict[str, Any] = api.get("/openapi.json").json()
    return found


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return found
    return schema


def _answer(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status, response in operation["responses"].items():
        if status.startswith("2") and "application/json" in response.get("content", {}):
            media: dict[str, Any] = response["content"]["application/json"]
            return media
    return None


def test_every_operation_has_a_named_id_a_description_and_an_example(
    document: dict[str, Any],
) -> None:
    ids = []
    for method, path, operation in _operations(document):
        where = f"{method.upper()} {path}"
        ids.append(operation["operationId"])
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", operation["operationId"]), where
        assert operation.get("description", "").strip(), where
        media = [
            m
            for part in (
                *operation["responses"].values(),
                operation.get("requestBody", {}),
            )
            for m in part.get("content", {}).values()
        ]
        assert any("example" in m or "examples" in m for m in media), where
    assert len(ids) == len(set(ids))
    assert "showDataset" in ids


def test_every_list_answers_the_one_page_shape(document: dict[str, Any]) -> None:
    lists = []
    for method, path, operation in _operations(document):
        media = _answer(operation)
        if media is None:
            continue
        schema = _schema(document, media["schema"])
        # No bare arrays: a list is a page, whatever route serves it.
        assert schema.get("type") != "array", f"{method.upper()} {path}"
        names = {p["name"] for p in operation.get("parameters", [])}
        if set(schema.get("properties", {})) == PAGE:
            lists.append(path)
            assert {"limit", "offset"} <= names, path
            assert set(schema["required"]) == PAGE, path
        else:
            assert "offset" not in names, path
    for path in ("/v1/datasets/{provider}/{dataset}/versions", "/v1/access/purposes"):
        assert path in lists
    assert "/v1/audit/entries" in lists
    assert len(lists) >= 12


def test_the_error_code_is_the_error_trees_enum(document: dict[str, Any]) -> None:
    tree = {
        value.code
        for value in vars(entrepot.errors).values()
        if isinstance(value, type) and issubclass(value, EntrepotError)
    }
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]["code"]["enum"]) == tree
    for field in ("rule", "clause", "budget", "setting", "retry_after_s", "fields"):
        assert field in detail["properties"], field
    assert detail["properties"]["budget"]["anyOf"][0]["enum"] == ["grant", "dataset"]
    refused = document["paths"]["/v1/queries"]["post"]["responses"]["403"]
    assert refused["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_schemas_have_names_a_generated_client_can_use(document: dict[str, Any]) -> None:
    names = document["components"]["schemas"]
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) for name in names), sorted(names)
    assert {"Budget", "Cap", "BudgetPage", "VersionPage", "EntryPage"} <= set(names)
    assert component_name("Page_BudgetRecord_str__") == "BudgetPage"
    budget = names["Budget"]["properties"]
    assert budget["valid_until"]["description"] == "The last day the budget may be spent."


def test_examples_are_instances_of_their_schemas(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    page = example_of({"$ref": "#/components/schemas/BudgetPage"}, components)
    assert set(page) == PAGE
    assert page["items"][0]["cap"]["epsilon_cap"] >= 0
    refused = example_of({"$ref": "#/components/schemas/ErrorDetail"}, components)
    assert refused["code"] in components["ErrorDetail"]["properties"]["code"]["enum"]


def test_the_docs_page_loads_nothing_from_outside_the_node(api: httpx.Client) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(source.startswith("/") for source in sources), sources
    assert "cdn" not in page.text
    for source in sources:
        asset = api.get(source)
        assert asset.status_code == 200, source
        assert len(asset.content) > 100, source
    assert api.get("/redoc").status_code == 404
