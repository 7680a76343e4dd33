from __future__ import annotations

import httpx


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


def test_wrong_method_has_the_one_error_shape_and_allow_header(api: httpx.Client) -> None:
    response = api.delete("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    _assert_error_shape(response.json(), "invalid_input")


def test_invalid_query_parameter_names_the_field(api: httpx.Client) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    health = schema["paths"]["/healthz"]["get"]["responses"]
    assert "500" in health
