"""The OpenAPI contract a client is generated from, and ``/docs`` that works offline.

Every operation gets a named id (``showDataset``: the route function's name in camel
case), its description (the route function's docstring) and an example of its answer
and body, built from the schemas' own field examples. Generic records get component
names a generated client can use (``Budget``, not ``BudgetRecord_str_``). Swagger UI's
files come installed with the package ``swagger-ui-bundle-v2`` and are served by the
node itself, so the docs page loads nothing from outside it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["STATIC_PATH", "component_name", "document", "example_of", "install", "operation_id"]

STATIC_PATH = "/static/swagger-ui"
_ASSETS = Path(swagger_ui_path)

# Component names pydantic derives from parametrized generics, and the names clients see.
_NAMES = {
    "BudgetRecord_str_": "Budget",
    "Cap_str_": "Cap",
    "Body_publishVersion": "PublishForm",
}
# Example values of fields that name the same thing in every schema, for fields whose
# schema gives none (the ledger's records, the answers): one market, told the same way.
_BY_NAME: dict[str, Any] = {
    "dataset": "riverside-hospitals/outpatient-visits",
    "provider": "riverside-hospitals",
    "consumer": "city-health-bureau",
    "org": "city-health-bureau",
    "account": "analyst",
    "grant": "GRANT-3",
    "request": "REQ-7",
    "purpose": "public-health-surveillance",
    "standard": "health.visit",
    "role": "consumer",
    "actions": ["aggregate-query"],
    "mechanism": "gaussian",
    "columns": ["district", "count"],
    "keys": ["district"],
    "aggregates": ["count"],
    "key": ["910101"],
}
# Deeper than any wire model nests; a recursive schema stops here.
_DEPTH = 12
_EXAMPLE_TIME = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def operation_id(route: APIRoute) -> str:
    """``showDataset`` for the route function ``show_dataset``."""
    head, *rest = route.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def install(app: FastAPI) -> None:
    """Serve ``/docs`` from the installed Swagger UI and the contract at ``/openapi.json``.

    The app must be made with ``docs_url=None`` and ``redoc_url=None`` (ReDoc would load
    its script from a CDN).
    """
    app.mount(STATIC_PATH, StaticFiles(directory=_ASSETS), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/favicon-32x32.png",
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document: named operations and schemas, with examples."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.operation_id is None:
            route.operation_id = operation_id(route)
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        servers=app.servers,
    )
    schema = _renamed(schema)
    components = schema.get("components", {}).get("schemas", {})
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            # A route without a docstring (health, metrics) is described by its summary.
            operation.setdefault("description", operation.get("summary", ""))
            _give_examples(operation, components)
    return schema


def component_name(name: str) -> str:
    """``AccountPage`` for ``Page_AccountOut_``, ``BudgetPage`` for ``Page_BudgetRecord_str__``."""
    page = re.fullmatch(r"Page_(.+)_", name)
    if page is not None:
        return f"{component_name(page.group(1)).removesuffix('Out')}Page"
    return _NAMES.get(name, name)


def _renamed(schema: dict[str, Any]) -> dict[str, Any]:
    names = {old: component_name(old) for old in schema.get("components", {}).get("schemas", {})}
    text = json.dumps(schema)
    for old, new in names.items():
        if old != new:
            text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed: dict[str, Any] = json.loads(text)
    components = renamed.get("components", {}).get("schemas", {})
    for old, new in names.items():
        if old != new:
            body = components.pop(old)
            body["title"] = new
            components[new] = body
    return renamed


def _give_examples(operation: dict[str, Any], components: dict[str, Any]) -> None:
    contents = [
        response.get("content", {})
        for status, response in operation.get("responses", {}).items()
        if status.startswith("2")
    ]
    contents.append(operation.get("requestBody", {}).get("content", {}))
    for content in contents:
        for media in content.values():
            if "example" not in media and "examples" not in media and "schema" in media:
                media["example"] = example_of(media["schema"], components)


def example_of(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """An instance of ``schema``: its own examples first, else a plain value of its type."""
    if depth > _DEPTH:
        return None
    if "$ref" in schema:
        return example_of(components[schema["$ref"].rsplit("/", 1)[1]], components, depth + 1)
    for key in ("examples", "example"):
        if key in schema:
            found = schema[key]
            return found[0] if key == "examples" and isinstance(found, list) else found
    if schema.get("default") is not None:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_of(options[0], components, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            found = example_of(part, components, depth + 1)
            if isinstance(found, dict):
                merged.update(found)
        return merged
    return _plain(schema, components, depth)


def _plain(schema: dict[str, Any], components: dict[str, Any], depth: int) -> Any:
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _field(name, field, components, depth) for name, field in properties.items()}
    if kind == "array":
        return [example_of(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(schema)


def _field(name: str, schema: dict[str, Any], components: dict[str, Any], depth: int) -> Any:
    own = {"$ref", "examples", "example", "allOf", "anyOf", "oneOf"} & set(schema)
    if name in _BY_NAME and not own:
        return _BY_NAME[name]
    return example_of(schema, components, depth + 1)


def _string(schema: dict[str, Any]) -> str:
    formats = {
        "date-time": _EXAMPLE_TIME.isoformat().replace("+00:00", "Z"),
        "date": _EXAMPLE_TIME.date().isoformat(),
        "binary": "",
        "uri": "https://exchange.example/",
    }
    return formats.get(schema.get("format", ""), "text")
