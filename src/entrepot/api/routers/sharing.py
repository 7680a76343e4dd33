"""The Delta Sharing protocol (server side) for releases, at ``/delta-sharing``.

Shares, schemas and tables are listed with the protocol's pagination; a table's version,
metadata and files follow the protocol's parquet response format. The bearer token is
one of the consumer's entrepot tokens, the sharing token of its share profile or an
account token (these routes are the only ones a sharing token opens, see
:mod:`entrepot.api.auth`); a consumer sees only the releases made for it, while they
are active and the grant each was made under is in force. File URLs are
pre-signed and expiring (:mod:`entrepot.exchange.sharing`), never later than the bearer
token that asked for them, and end with that token; they are served here without it,
with ``HEAD`` and HTTP ranges as the official clients read them. A
release has one version, 0: asking for another, for a timestamp or for changes is
refused. Every refusal of these routes, a missing or bad token and a malformed request
included, has the protocol's shape ``{"errorCode", "message"}``, and permanent ones are
4xx: the official client retries a 5xx for minutes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict, Field

from entrepot.api._exchange import exchange_of
from entrepot.api.auth import SharingConsumer
from entrepot.api.errors import ERROR_RESPONSES, ErrorBody
from entrepot.api.openapi import operation_id
from entrepot.errors import InvalidInput
from entrepot.exchange.accounts import token_id_of
from entrepot.exchange.sharing import TABLE_VERSION, Sharing
from entrepot.schemas.releases import SHARING_PREFIX

__all__ = ["router"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ProtocolError(BaseModel):
    """A refusal in the Delta Sharing protocol's shape."""

    errorCode: str
    message: str


async def _in_protocol_shape(request: Request, error: Exception) -> Response:
    """The API's own answer to ``error`` (status, message, headers), in the protocol's shape."""
    handlers = request.app.exception_handlers
    handler = next((handlers[c] for c in type(error).__mro__ if c in handlers), None)
    if handler is None:
        raise error
    answer: Response = await handler(request, error)
    found = json.loads(bytes(answer.body))["error"]
    kept = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-type")}
    return JSONResponse(
        {"errorCode": found["code"].upper(), "message": found["message"]},
        status_code=answer.status_code,
        headers=kept,
    )


class _ProtocolRoute(APIRoute):
    """A route whose every refusal has the protocol's shape: those of its token and of
    its request's validation, raised before its handler runs, as well as its own."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:
                return await _in_protocol_shape(request, error)

        return answer


router = APIRouter(
    prefix=SHARING_PREFIX,
    tags=["delta sharing"],
    generate_unique_id_function=operation_id,
    route_class=_ProtocolRoute,
)

# The routes answer refusals in the protocol's shape; a path or method no route takes,
# and the node's limits on requests (rate, declared body size), are refused by the app
# before any route runs, in the API's.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {**spec, "model": ErrorBody | ProtocolError} for status, spec in ERROR_RESPONSES.items()
}

T = TypeVar("T")
_NDJSON = "application/x-ndjson; charset=utf-8"
_VERSION = {"Delta-Table-Version": str(TABLE_VERSION)}
_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")
# The most items one list page holds, whatever maxResults asks for.
_PAGE_MAX = 500

# Any Int32, as the protocol declares it.
MaxResults = Query(None, alias="maxResults", ge=0, le=2**31 - 1)
PageToken = Query(None, alias="pageToken", max_length=20)
# A page token is the offset of the page, as this server writes it.
_OFFSET = re.compile(r"[0-9]{1,18}")


def _sharing(request: Request) -> Sharing:
    return exchange_of(request).sharing


def _page(items: Sequence[T], max_results: int | None, token: str | None) -> tuple[list[T], str]:
    if token is not None and not _OFFSET.fullmatch(token):
        raise InvalidInput(
            "pageToken is not one this server gave", hint="start from the first page"
        )
    start = int(token or 0)
    size = _PAGE_MAX if max_results is None else min(max_results, _PAGE_MAX)
    page = list(items[start : start + size])
    following = start + len(page)
    return page, str(following) if following < len(items) and size else ""


def _listing(items: list[dict[str, Any]], next_token: str) -> JSONResponse:
    body: dict[str, Any] = {"items": items}
    if next_token:
        body["nextPageToken"] = next_token
    return JSONResponse(body)


def _table_item(share: dict[str, str], ident: str) -> dict[str, Any]:
    return {"name": share["table"], "schema": share["schema"], "share": share["share"], "id": ident}


def _token_id(request: Request) -> str:
    """The public id of the bearer token the route's dependency authenticated (so one
    that is well formed): a file URL lives no longer than that token."""
    _scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    found = token_id_of(credentials)
    assert found is not None, "the route authenticates its bearer token first"
    return found


def _base(request: Request) -> str:
    public = exchange_of(request).settings.public_url
    root = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return root + SHARING_PREFIX


def _only_version(version: int | None, timestamp: str | None) -> None:
    """Refuse a version other than a release's one, or a timestamp: no history is shared."""
    if timestamp is not None:
        raise InvalidInput(
            "this table's history is not shared: a release has one version, "
            f"{TABLE_VERSION}, and no timestamps to read it at",
            hint="leave timestamp out to read the release",
        )
    if version is not None and version != TABLE_VERSION:
        raise InvalidInput(
            f"this table has no version {version}: a release never changes, and its one "
            f"version is {TABLE_VERSION}",
            hint=f"leave version out, or ask for version {TABLE_VERSION}",
        )


def _no_changes() -> InvalidInput:
    return InvalidInput(
        "this table has no change data feed: a release never changes",
        hint="read the release whole, without startingVersion or endingVersion",
    )


class TableQuery(BaseModel):
    """A table query's body: hints are accepted and ignored, as the protocol allows; the
    table is read whole, at its one version."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"predicateHints": ["sex = 1"], "limitHint": 1000}]},
    )

    predicateHints: list[str] | None = Field(None, max_length=1000)
    jsonPredicateHints: str | None = None
    limitHint: int | None = Field(None, ge=0, le=2**31 - 1)
    version: int | None = Field(None, ge=0, le=2**63 - 1)
    timestamp: str | None = Field(None, max_length=100)
    startingVersion: int | None = Field(None, ge=0, le=2**63 - 1)
    endingVersion: int | None = Field(None, ge=0, le=2**63 - 1)

    def check(self) -> None:
        if self.startingVersion is not None or self.endingVersion is not None:
            raise _no_changes()
        _only_version(self.version, self.timestamp)


@router.get("/shares", summary="The shares your token sees (one per provider).")
def list_shares(
    request: Request,
    actor: SharingConsumer,
    max_results: int | None = MaxResults,
    page_token: str | None = PageToken,
) -> Response:
    page, following = _page(_sharing(request).shares(actor), max_results, page_token)
    return _listing([{"name": name} for name in page], following)


@router.get("/shares/{share}", summary="One share.")
def get_share(request: Request, actor: SharingConsumer, share: str) -> Response:
    _sharing(request).schemas(actor, share)
    return JSONResponse({"share": {"name": share.lower()}})


@router.get("/shares/{share}/schemas", summary="The schemas of a share (one per dataset).")
def list_schemas(
    request: Request,
    actor: SharingConsumer,
    share: str,
    max_results: int | None = MaxResults,
    page_token: str | None = PageToken,
) -> Response:
    names = _sharing(request).schemas(actor, share)
    page, following = _page(names, max_results, page_token)
    return _listing([{"name": n, "share": share.lower()} for n in page], following)


@router.get("/shares/{share}/schemas/{schema}/tables", summary="The tables of a schema.")
def list_tables(
    request: Request,
    actor: SharingConsumer,
    share: str,
    schema: str,
    max_results: int | None = MaxResults,
    page_token: str | None = PageToken,
) -> Response:
    found = _sharing(request).in_schema(actor, share, schema)
    page, following = _page(found, max_results, page_token)
    return _listing([_table_item(i.share, i.record.sha256) for i in page], following)


@router.get("/shares/{share}/all-tables", summary="Every table of a share.")
def list_all_tables(
    request: Request,
    actor: SharingConsumer,
    share: str,
    max_results: int | None = MaxResults,
    page_token: str | None = PageToken,
) -> Response:
    found = _sharing(request).in_schema(actor, share, None)
    page, following = _page(found, max_results, page_token)
    return _listing([_table_item(i.share, i.record.sha256) for i in page], following)


_TABLE = "/shares/{share}/schemas/{schema}/tables/{table}"


@router.get(_TABLE + "/version", summary="A table's version (a release never changes).")
def table_version(
    request: Request, actor: SharingConsumer, share: str, schema: str, table: str
) -> Response:
    _sharing(request).table(actor, share, schema, table)
    return Response(headers=_VERSION)


@router.head(_TABLE, summary="A table's version, in a header (the protocol's older form).")
def table_version_head(
    request: Request, actor: SharingConsumer, share: str, schema: str, table: str
) -> Response:
    return table_version(request, actor, share, schema, table)


def _lines(*objects: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objects)


@router.get(_TABLE + "/metadata", summary="A table's protocol and metadata (NDJSON).")
def table_metadata(
    request: Request,
    actor: SharingConsumer,
    share: str,
    schema: str,
    table: str,
    version: int | None = Query(None, ge=0, le=2**63 - 1, description="Only 0 is."),
    timestamp: str | None = Query(None, max_length=100, description="No history is shared."),
) -> Response:
    sharing = _sharing(request)
    info = sharing.table(actor, share, schema, table)
    _only_version(version, timestamp)
    body = _lines({"protocol": {"minReaderVersion": 1}}, {"metaData": sharing.metadata(info)})
    return Response(body, media_type=_NDJSON, headers=_VERSION)


@router.post(_TABLE + "/query", summary="A table's files, as pre-signed expiring URLs (NDJSON).")
def query_table(
    request: Request,
    actor: SharingConsumer,
    share: str,
    schema: str,
    table: str,
    query: TableQuery | None = Body(None),
) -> Response:
    """Predicate and limit hints are accepted and ignored, as the protocol allows; another
    version than 0, a timestamp or changes are refused, before anything is read. The
    read is metered and logged."""
    sharing = _sharing(request)
    info = sharing.table(actor, share, schema, table)
    (query or TableQuery()).check()
    files = sharing.files(actor, info, _base(request), _token_id(request))
    body = _lines(
        {"protocol": {"minReaderVersion": 1}},
        {"metaData": sharing.metadata(info)},
        *({"file": f} for f in files),
    )
    return Response(body, media_type=_NDJSON, headers=_VERSION)


@router.get(_TABLE + "/changes", summary="A table's changes: none, a release never changes.")
def table_changes(
    request: Request, actor: SharingConsumer, share: str, schema: str, table: str
) -> Response:
    """Refused for every table the consumer may read; 404 for any other."""
    _sharing(request).table(actor, share, schema, table)
    raise _no_changes()


@router.get(
    "/files/{token}", summary="A release file behind a pre-signed URL (no bearer token; ranges)."
)
def read_file(request: Request, token: str) -> Response:
    return _file(request, token)


@router.head("/files/{token}", summary="A release file's size, behind a pre-signed URL.")
def head_file(request: Request, token: str) -> Response:
    return _file(request, token)


def _file(request: Request, token: str) -> Response:
    sharing = _sharing(request)
    info = sharing.open(sharing.check(token))
    size = info.record.size_bytes
    start, end = 0, size - 1
    status = 200
    wanted = request.headers.get("range")
    if wanted:
        match = _RANGE.match(wanted.strip())
        if match is None or (not match.group(1) and not match.group(2)):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        else:
            start = max(size - int(match.group(2)), 0)
        if start > end or start >= size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Cache-Control": "no-store",
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        sharing.chunks(info, start, end - start + 1),
        status_code=status,
        media_type="application/octet-stream",
        headers=headers,
    )
