"""The shipped standards and code lists: list and show (public to every account).

Only shipped names are served: the library also reads a standard from a file path,
which the API must never do on a client's say-so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from entrepot import standards
from entrepot.api.auth import AnyActor
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.client.shipped import ShippedStandards
from entrepot.errors import NotFound
from entrepot.schemas.standards import (
    CodeListOut,
    StandardOut,
    StandardSummary,
)

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/standards", tags=["standards"], generate_unique_id_function=operation_id
)

Paging = Annotated[PageParams, Depends(page_params)]
StandardName = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", examples=["health.visit"])
]
CodeListName = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", examples=["region.district"])
]


def _shipped(name: str) -> str:
    if name not in standards.names():
        raise NotFound(
            f"no standard {name!r} on this node",
            hint=f"the shipped standards are: {', '.join(standards.names())}",
        )
    return name


@router.get("", summary="The standards datasets can be published in.")
def list_standards(_actor: AnyActor, paging: Paging) -> Page[StandardSummary]:
    """The standards shipped with this node, by name, with their title and version."""
    body = ShippedStandards().standards_page(paging.limit, paging.offset)
    return page_of(body, StandardSummary.model_validate)


@router.get("/codelists/{name}", summary="A code list: codes, labels and parent codes.")
def show_codelist(_actor: AnyActor, name: CodeListName) -> CodeListOut:
    """A dimension's public code list: a query may group by these codes only."""
    return CodeListOut.model_validate(ShippedStandards().codelist(name))


@router.get("/{name}", summary="One standard: columns with type, role, constraints, bounds.")
def show_standard(_actor: AnyActor, name: StandardName) -> StandardOut:
    """Each column's type, role (identifier, dimension, measure...), constraints and bounds."""
    return StandardOut.model_validate(ShippedStandards().standard(_shipped(name)))
