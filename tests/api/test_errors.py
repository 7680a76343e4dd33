from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.api.conftest import World


def _assert_error_shape(body: dict[str, object], code: str) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == code
    assert error["message"]
    assert "hint" in error


def test_healthz_answers_without_a_token(api: httpx.Client) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unknown_path_has_the_one_error_shape(api: httpx.Client) -> None:
    response = api.get("/v1/no-such-thing")
    assert response.status_code == 404
    _assert_error_shape(response.json(), "not_found")


# A text someone would like a link to make the node say.
CHOSEN = "your-account-is-locked-call-0800-555-0199"


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", f"/v1/{CHOSEN}", 404, "no such endpoint: the path asked for"),
        (
            "DELETE",
            f"/v1/catalog/datasets/{CHOSEN}/x",
            405,
            "method not allowed on the path asked for",
        ),
    ],
    ids=["unknown-path", "wrong-method"],
)
def test_a_refused_path_is_never_repeated_in_the_answer(
    api: httpx.Client, method: str, path: str, status: int, message: str
) -> None:
    response = api.request(method, path)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] == message
    assert CHOSEN not in response.text
    if status == 404:
        assert "/openapi.json" in error["hint"]


def test_wrong_method_has_the_one_error_shape_and_allow_header(api: httpx.Client) -> None:
    response = api.delete("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    _assert_error_shape(response.json(), "invalid_input")


def test_invalid_query_parameter_names_the_field(world: World, api: httpx.Client) -> None:
    response = api.get(
        "/v1/access/requests", params={"limit": "many"}, headers=world.auth("consumer")
    )
    assert response.status_code == 400
    _assert_error_shape(response.json(), "invalid_input")
    assert response.json()["error"]["fields"] == ["query.limit"]
    assert "many" not in response.text


def test_every_operation_documents_its_success_body_and_the_error_shape(
    api: httpx.Client,
) -> None:
    schema = api.get("/openapi.json").json()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if path.startswith("/v1/")
    ]
    assert len(operations) >= 30
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        success = [code for code in op["responses"] if code.startswith("2")]
        assert success, where
        assert op["responses"][success[0]].get("content"), where
        for code in ("400", "401", "403", "404", "413", "429", "500"):
            content = op["responses"][code]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/ErrorBody"}, (where, code)
        assert op.get("security") == [{"HTTPBearer": []}], where


def test_the_api_package_names_its_public_surface() -> None:
    import entrepot.api

    assert sorted(entrepot.api.__all__) == ["create_app"]
    for name in entrepot.api.__all__:
        assert getattr(entrepot.api, name) is not None
