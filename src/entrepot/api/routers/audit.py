"""The transparency log: entries, signed tree heads, inclusion and consistency proofs.

The log is public by design (anyone may check who asked what, when, for which
purpose), so every account reads it; entries hold no personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from entrepot.api.auth import AnyActor, Auditor
from entrepot.api.routers._client import client_of
from entrepot.schemas.audit import (
    ConsistencyOut,
    EntryOut,
    HeadOut,
    InclusionOut,
    ReconciliationOut,
)
from entrepot.transparency import Kind

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])

# Entries one call returns at most (the log is scanned in order).
_ENTRIES_MAX = 1000
# Tree sizes and indexes stay within I-JSON's exact integers (RFC 7493 section 2.2);
# the server refuses any beyond the log's own size.
_SIZE_MAX = 2**53 - 1
# RFC 3339 date-times, the offset optional (UTC then); not the Unix numbers pydantic reads.
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
)


def _date_time(value: object) -> object:
    if not (isinstance(value, str) and _DATE_TIME.fullmatch(value)):
        raise ValueError("expected an RFC 3339 date-time, e.g. 2025-01-31T00:00:00Z")
    return value


Since = Annotated[
    datetime | None,
    BeforeValidator(_date_time),
    Query(description="Only entries from this time on (RFC 3339; UTC without an offset)."),
]
# JSON Lines has no registered media type; this is the common name for it.
JSON_LINES = "application/jsonl"
# Lines are sent in chunks of about this size: one write per line would dominate the cost.
_CHUNK_BYTES = 64 * 1024
_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One canonical JSON object per line, in log order.",
        "content": {JSON_LINES: {}},
    }
}


@router.get("/entries", summary="Log entries, oldest first (the last `limit` that match).")
def entries(
    request: Request,
    actor: AnyActor,
    dataset: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[Kind | None, Query()] = None,
    since: Since = None,
    limit: Annotated[int, Query(ge=1, le=_ENTRIES_MAX)] = 100,
) -> list[EntryOut]:
    found = client_of(request, actor).audit_entries(
        dataset=dataset, kind=None if kind is None else kind.value, since=since, limit=limit
    )
    return [EntryOut.model_validate(item) for item in found]


@router.get(
    "/reconciliation",
    summary="The node's database against its log (auditor or operator).",
    description="Every published version, grant change, account change and policy has its "
    "entry, every ledger row that spent ε one answered or failed query entry and one use; "
    "the log is no shorter than the database last saw it. Computed by the server: what it "
    "reports, not a proof.",
)
def reconciliation(request: Request, actor: Auditor) -> ReconciliationOut:
    return ReconciliationOut.model_validate(client_of(request, actor).audit_reconciliation())


@router.get("/head", summary="The latest signed tree head.")
def head(request: Request, actor: AnyActor) -> HeadOut:
    return HeadOut.model_validate(client_of(request, actor).audit_head())


@router.post("/heads", summary="Sign a new tree head now (auditor or operator).")
def sign_head(request: Request, actor: Auditor) -> HeadOut:
    return HeadOut.model_validate(client_of(request, actor).audit_sign_head())


@router.get("/proofs/inclusion/{index}", summary="Inclusion proof of one entry.")
def inclusion(
    request: Request,
    actor: AnyActor,
    index: Annotated[int, Path(ge=0, le=_SIZE_MAX)],
    size: Annotated[int | None, Query(ge=1, le=_SIZE_MAX)] = None,
) -> InclusionOut:
    return InclusionOut.model_validate(client_of(request, actor).audit_inclusion(index, size))


@router.get("/proofs/consistency", summary="Consistency proof between two tree sizes.")
def consistency(
    request: Request,
    actor: AnyActor,
    size1: Annotated[int, Query(ge=1, le=_SIZE_MAX)],
    size2: Annotated[int, Query(ge=1, le=_SIZE_MAX)],
) -> ConsistencyOut:
    proof = client_of(request, actor).audit_consistency(size1, size2)
    return ConsistencyOut.model_validate(proof)


def _chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    pending: list[bytes] = []
    size = 0
    for line in lines:
        pending.append(line + b"\n")
        size += len(line) + 1
        if size >= _CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


@router.get(
    "/export/heads",
    summary="Every signed tree head, oldest first, as JSON lines (auditor or operator).",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
)
def export_heads(request: Request, actor: Auditor) -> StreamingResponse:
    lines = client_of(request, actor).audit_export_heads()
    return StreamingResponse(_chunks(lines), media_type=JSON_LINES)


@router.get(
    "/export/entries",
    summary="Every log entry as stored (canonical JSON), one per line (auditor or operator).",
    description="Rehash these lines to check the signed heads: nothing the node computed "
    "needs to be trusted. Fetch the heads first: the entries then cover every one of them.",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
)
def export_entries(request: Request, actor: Auditor) -> StreamingResponse:
    lines = client_of(request, actor).audit_export_entries()
    return StreamingResponse(_chunks(lines), media_type=JSON_LINES)
