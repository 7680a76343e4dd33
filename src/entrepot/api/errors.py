"""One error shape for every response that is not a success.

Every error body is ``{"error": {"code", "message", "hint", ...details}}``: an
:class:`~entrepot.errors.EntrepotError` raised by the domain layer, a request that
failed validation, an unknown path or method, a body that is too large, a rate
limit. Unexpected exceptions become a 500 in the same shape, with no internals in
the body (the traceback goes to the server log, never to the client).

On the federation protocol's paths (``/federation/``), whose callers are nodes that
take no answer their peer did not sign for their request, such a refusal is signed
for the request as the federation routes sign theirs
(:func:`~entrepot.federation.envelope.sign_response`): a body too large, a rate, a
request that failed validation, an unknown path or method reach the calling node as
this node's word. No route checked the request's envelope yet, so such a refusal
names nothing of the request but the route's parameters that failed validation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from entrepot.errors import EntrepotError, InvalidInput, LimitExceeded, NotFound
from entrepot.federation.envelope import SIGNATURE, request_digest, sign_response

__all__ = [
    "ERROR_CODES",
    "ERROR_RESPONSES",
    "ErrorBody",
    "ErrorDetail",
    "error_response",
    "install",
]

_log = logging.getLogger("entrepot.api")
# The paths of the federation protocol (entrepot.api.routers.federation).
_FEDERATION = "/federation/"


def _tree(root: type[EntrepotError]) -> list[type[EntrepotError]]:
    return [root, *(c for sub in root.__subclasses__() for c in _tree(sub))]


# Every code of the error tree (entrepot.errors), the enum of the `code` field.
ERROR_CODES: tuple[str, ...] = tuple(sorted({cls.code for cls in _tree(EntrepotError)}))


class ErrorDetail(BaseModel):
    """An error: its code, message and hint, and the fields its code carries."""

    # An error may carry structured fields besides those named here.
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "code": "policy_violation",
                    "message": "epsilon 2.0 is above the policy's cap of 1.0 per query",
                    "hint": "ask for at most epsilon 1.0",
                    "rule": "epsilon_cap",
                }
            ]
        },
    )

    code: str = Field(
        description="Stable machine-readable code, from the error tree.",
        json_schema_extra={"enum": list(ERROR_CODES)},
        examples=["not_found"],
    )
    message: str = Field(description="What went wrong, and where.")
    hint: str = Field(description="How to fix it.")
    rule: str | None = Field(
        default=None,
        description="The rule that refused: a privacy rule (`policy_violation`), or "
        "`token_scope`, `provider_decides` and the portal's `csrf` (`forbidden`).",
    )
    clause: str | None = Field(
        default=None, description="`contract_violation`: the grant's clause that refused."
    )
    budget: Literal["grant", "dataset"] | None = Field(
        default=None,
        description="`budget_exhausted`: the consumer's grant, or the dataset's global cap.",
    )
    setting: str | None = Field(
        default=None, description="`limit_exceeded`: the setting that raises the limit."
    )
    fields: list[str] | None = Field(
        default=None, description="`invalid_input` of a request: the fields that failed."
    )
    retry_after_s: int | None = Field(
        default=None, description="HTTP 429: seconds to wait, as in `Retry-After`."
    )
    part: str | None = Field(default=None, description="`proof_invalid`: the part that failed.")
    report: dict[str, Any] | None = Field(
        default=None, description="`validation_failed`: the validation report, row by row."
    )
    parameters: list[str] | None = Field(
        default=None,
        description="The request's parameters the message and hint name (as `name`): a "
        "client may show them in its own spelling, e.g. a command line's flags.",
    )
    idempotency: Literal["running", "reused", "uncertain"] | None = Field(
        default=None,
        description="`conflict` of an `Idempotency-Key`: the request it names is still "
        "running (send it again later), the key was first sent with another request, or "
        "the request failed once it may have committed (check its effect; a new key "
        "runs it again).",
    )


class ErrorBody(BaseModel):
    """Every answer that is not a success."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Invalid input (a malformed request or argument).",
    401: "No credentials, or bad ones.",
    403: "Authenticated, but a role, contract, policy or budget refused.",
    404: "No such object, or not one this account may see.",
    405: "Method not allowed on this path.",
    408: "The request's body came too slowly; `setting` names what raises the limit.",
    409: "Conflict with the current state.",
    413: "A resource limit was hit; `setting` names what raises it.",
    422: "The content failed validation against the standard.",
    429: "Too many requests; retry after the `Retry-After` seconds.",
    500: "Internal error.",
}

# Declared on every route so the OpenAPI schema lists each status the API can answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _DESCRIPTIONS.items()
}


def error_response(
    error: EntrepotError,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    scope: Scope | None = None,
) -> JSONResponse:
    """``error`` in the one shape; given the request's ``scope``, signed for the request
    if its path is the federation protocol's."""
    response = JSONResponse(error.to_dict(), status_code=status or error.status, headers=headers)
    if scope is not None and _federation(scope):
        key = scope["app"].state.node.signing_key
        digest = request_digest(Headers(scope=scope))
        response.headers[SIGNATURE] = sign_response(
            key, digest, response.status_code, bytes(response.body)
        )
    return response


def _federation(scope: Scope) -> bool:
    return str(scope["path"]).startswith(_FEDERATION)


def _http_error(status: int, where: str) -> EntrepotError:
    if status == 404:
        return NotFound(
            f"no such endpoint: {where}",
            hint="the endpoints are listed at /docs and /openapi.json",
        )
    if status == 405:
        return InvalidInput(
            f"method not allowed on {where}", hint="the Allow header lists the methods it takes"
        )
    if status == 413:
        return LimitExceeded(
            f"request body too large for {where}",
            setting="request_body_max_bytes",
            hint="send less, or raise ENTREPOT_REQUEST_BODY_MAX_BYTES on the server",
        )
    if status < 500:
        return InvalidInput(f"bad request to {where} (HTTP {status})", hint="check the request")
    return EntrepotError(f"request to {where} failed (HTTP {status})", hint="retry later")


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_entrepot_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EntrepotError)
    if error.status >= 500:
        _log.error("%s: %s", error.code, error.message)
    headers: dict[str, str] = {}
    if error.status == 401:
        # RFC 9110 section 11.6.1: a 401 names the scheme the client should use.
        headers["WWW-Authenticate"] = "Bearer"
    if error.status == 429 and "retry_after_s" in error.details:
        headers["Retry-After"] = str(error.details["retry_after_s"])
    return error_response(error, headers=headers or None, scope=request.scope)


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    problems = [
        f"{_location(item.get('loc', ()))}: {item.get('msg', 'invalid')}"
        for item in error.errors()[:5]
    ]
    # Pydantic's own error items may echo the input; only locations and messages go out.
    invalid = InvalidInput(
        "invalid request: " + "; ".join(problems),
        hint="check the request against the schema at /openapi.json",
        fields=[_location(item.get("loc", ())) for item in error.errors()],
    )
    # A route that answers people in pages (the portal's) renders its own.
    page = getattr(request.app.state, "error_page", None)
    if page is not None and (answer := await page(request, invalid)) is not None:
        return answer
    return error_response(invalid, scope=request.scope)


async def _on_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if isinstance(error.__cause__, LimitExceeded):
        # FastAPI turns any failure while reading a body into a 400, the body limit's
        # own refusal of a streamed (chunked) body included.
        return error_response(error.__cause__, scope=request.scope)
    # The path is whoever wrote the link's to choose: an answer never repeats it, so no
    # link makes this node say a text of someone else's choosing. On a federation path,
    # signed before any route checked the request's envelope, the path may not even be
    # the one its sender signed.
    where = "a federation path" if _federation(request.scope) else "the path asked for"
    mapped = _http_error(error.status_code, where)
    headers = error.headers
    if error.status_code == 405:
        # Starlette names the methods of the first route on the path, not of all of them.
        headers = {**(headers or {}), "Allow": ", ".join(_methods(request))}
    return error_response(mapped, status=error.status_code, headers=headers, scope=request.scope)


def _methods(request: Request) -> list[str]:
    """Every method some route takes on the request's path (RFC 9110 section 10.2.1)."""
    allowed: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and compile_path(route.path)[0].fullmatch(request.url.path):
            allowed |= set(route.methods or ())
    return sorted(allowed)


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    _log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(
        EntrepotError(
            "internal error",
            hint="the server log has the details; report it if it persists",
        ),
        scope=request.scope,
    )


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""
    app.add_exception_handler(EntrepotError, _on_entrepot_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
