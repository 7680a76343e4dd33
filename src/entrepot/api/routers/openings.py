"""Openings of the commitments the public log shows, for those who may see them.

A query's opening goes to the organization that asked, auditors and operators; a
version's opening to the dataset's provider only. Either can then be checked
offline against the log entry or receipt (`entrepot opening verify`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from entrepot.api.auth import AnyActor
from entrepot.api.openapi import operation_id
from entrepot.api.routers._client import client_of
from entrepot.schemas.openings import ContentOpeningOut, QueryOpeningOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/openings", tags=["audit"], generate_unique_id_function=operation_id)


@router.get(
    "/queries/{index}",
    summary="Open the query commitment of log entry `index` (who asked, auditor, operator).",
)
def open_query(
    request: Request, actor: AnyActor, index: Annotated[int, Path(ge=0, le=2**62)]
) -> QueryOpeningOut:
    """The SQL, purpose and answer behind the entry's commitment, to check offline."""
    return QueryOpeningOut.model_validate(client_of(request, actor).query_opening(index))


@router.get(
    "/datasets/{provider}/{dataset}/versions/{version}",
    summary="Open a version's content commitment (its provider only).",
)
def open_version(
    request: Request,
    actor: AnyActor,
    provider: Annotated[str, Path(max_length=64)],
    dataset: Annotated[str, Path(max_length=64)],
    version: Annotated[int, Path(ge=1, le=2**31)],
) -> ContentOpeningOut:
    """The key behind the version's content commitment, to check its file offline."""
    opened = client_of(request, actor).version_opening(f"{provider}/{dataset}", version)
    return ContentOpeningOut.model_validate(opened)
