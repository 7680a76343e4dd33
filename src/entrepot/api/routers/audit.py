"""The transparency log: entries, signed tree heads, inclusion and consistency proofs.

The log is public by design (anyone may check who asked what, when, for which
purpose), so every account reads it; entries hold no personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from entrepot.api.auth import AnyActor, Auditor
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
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

router = APIRouter(prefix="/v1/audit", tags=["audit"], generate_unique_id_function=operation_id)

Paging = Annotated[PageParams, Depends(page_params)]
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


def _lines(example: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "One canonical JSON object per line, in log order.",
            "content": {JSON_LINES: {"schema": {"type": "string"}, "example": example}},
        }
    }


@router.get("/entries", summary="Log entries that match, oldest first.")
def list_audit_entries(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    dataset: Annotated[
        str | None,
        Query(max_length=200, description="Only entries about this dataset (alone or joined)."),
    ] = None,
    kind: Annotated[Kind | None, Query(description="Only entries of this kind.")] = None,
    since: Since = None,
) -> Page[EntryOut]:
    """Each entry with its index in the log. Without a filter, `offset` is the index of
    the first entry; the last page of a log of `total` entries starts at `total - limit`."""
    body = client_of(request, actor).audit_entries_page(
        dataset=dataset,
        kind=None if kind is None else kind.value,
        since=since,
        limit=paging.limit,
        offset=paging.offset,
    )
    return page_of(body, EntryOut.model_validate)


@router.get(
    "/reconciliation",
    summary="The node's database against its log (auditor or operator).",
    description="Every published version, grant change, account change and policy has its "
    "entry, every ledger row that spent ε one answered or failed query entry and one use; "
    "the log is no shorter than the database last saw it. Computed by the server: what it "
    "reports, not a proof.",
)
def show_reconciliation(request: Request, actor: Auditor) -> ReconciliationOut:
    return ReconciliationOut.model_validate(client_of(request, actor).audit_reconciliation())


@router.get("/head", summary="The latest signed tree head.")
def show_head(request: Request, actor: AnyActor) -> HeadOut:
    """The log's size and root hash, signed with the node's Ed25519 key (RFC 9162)."""
    return HeadOut.model_validate(client_of(request, actor).audit_head())


@router.post("/heads", summary="Sign a new tree head now (auditor or operator).")
def sign_head(request: Request, actor: Auditor) -> HeadOut:
    """The new head covers every entry appended so far."""
    return HeadOut.model_validate(client_of(request, actor).audit_sign_head())


@router.get("/proofs/inclusion/{index}", summary="Inclusion proof of one entry.")
def prove_inclusion(
    request: Request,
    actor: AnyActor,
    index: Annotated[int, Path(ge=0, le=_SIZE_MAX)],
    size: Annotated[int | None, Query(ge=1, le=_SIZE_MAX)] = None,
) -> InclusionOut:
    """The audit path from the entry's leaf hash to the root of the latest signed head, or
    of tree `size` (RFC 9162 section 2.1.3)."""
    return InclusionOut.model_validate(client_of(request, actor).audit_inclusion(index, size))


@router.get("/proofs/consistency", summary="Consistency proof between two tree sizes.")
def prove_consistency(
    request: Request,
    actor: AnyActor,
    size1: Annotated[int, Query(ge=1, le=_SIZE_MAX)],
    size2: Annotated[int, Query(ge=1, le=_SIZE_MAX)],
) -> ConsistencyOut:
    """The hashes that show the tree of `size1` entries is a prefix of the tree of
    `size2` (RFC 9162 section 2.1.4): the log only ever grew."""
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
    responses=_lines(
        '{"key":"9f2c...","root":"5d1e...","signature":"b0a4...","size":12,'
        '"time":"2026-11-30T09:30:00Z"}\n'
    ),
)
def export_heads(request: Request, actor: Auditor) -> StreamingResponse:
    """Each head as signed, to check offline with the node's key."""
    lines = client_of(request, actor).audit_export_heads()
    return StreamingResponse(_chunks(lines), media_type=JSON_LINES)


@router.get(
    "/export/entries",
    summary="Every log entry as stored (canonical JSON), one per line (auditor or operator).",
    description="Rehash these lines to check the signed heads: nothing the node computed "
    "needs to be trusted. Fetch the heads first: the entries then cover every one of them.",
    response_class=StreamingResponse,
    responses=_lines(
        '{"account":"ACCOUNT-3","actor":"local","change":"created","kind":"account",'
        '"org":"city-health-bureau","role":"consumer","scope":"full","time":"2026-11-30T09:30:00Z",'
        '"token":"TOKEN-3"}\n'
    ),
)
def export_entries(request: Request, actor: Auditor) -> StreamingResponse:
    """Each entry's exact bytes, as hashed into the log's Merkle tree."""
    lines = client_of(request, actor).audit_export_entries()
    return StreamingResponse(_chunks(lines), media_type=JSON_LINES)
