"""The shipped standards and code lists: list and show (public to every account).

Only shipped names are served: the library also reads a standard from a file path,
which the API must never do on a client's say-so.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from entrepot import standards
from entrepot.api.auth import AnyActor
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.errors import NotFound

__all__ = ["CodeListOut", "StandardOut", "StandardSummary", "router", "summary_of"]

router = APIRouter(prefix="/v1/standards", tags=["standards"])

Paging = Annotated[PageParams, Depends(page_params)]
StandardName = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", examples=["health.visit"])
]
CodeListName = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", examples=["region.district"])
]


class ForeignKeyOut(BaseModel):
    fields: list[str]
    codelist: str
    columns: list[str]


class FieldOut(BaseModel):
    name: str
    type: str
    format: str | None
    role: str
    title: str
    description: str
    constraints: dict[str, Any] = Field(description="required, unique, minimum, maximum, ...")
    bounds: list[float] | None = Field(description="Public clamping bounds of a measure.")
    codelist: str | None


class StandardOut(BaseModel):
    name: str
    title: str
    description: str
    version: str
    privacy_unit: str | None
    one_row_per_unit: bool
    primary_key: list[str]
    foreign_keys: list[ForeignKeyOut]
    fields: list[FieldOut]


class StandardSummary(BaseModel):
    name: str
    title: str
    version: str
    columns: int
    privacy_unit: str | None


class CodeOut(BaseModel):
    code: str
    label: str
    parent: str | None


class CodeListOut(BaseModel):
    name: str
    codes: list[CodeOut]

    @classmethod
    def of(cls, listed: standards.CodeList) -> CodeListOut:
        return cls(
            name=listed.name,
            codes=[CodeOut(code=c, label=lb, parent=p) for c, lb, p in listed.rows()],
        )


def summary_of(standard: standards.Standard) -> StandardSummary:
    return StandardSummary(
        name=standard.name,
        title=standard.title,
        version=standard.version,
        columns=len(standard.fields),
        privacy_unit=standard.privacy_unit,
    )


def _shipped(name: str) -> standards.Standard:
    if name not in standards.names():
        raise NotFound(
            f"no standard {name!r} on this node",
            hint=f"the shipped standards are: {', '.join(standards.names())}",
        )
    return standards.get(name)


@router.get("", summary="The standards datasets can be published in.")
def list_standards(_actor: AnyActor, paging: Paging) -> Page[StandardSummary]:
    shipped = [standards.get(name) for name in standards.names()]
    return page_of(shipped, paging, summary_of)


@router.get("/codelists/{name}", summary="A code list: codes, labels and parent codes.")
def show_codelist(_actor: AnyActor, name: CodeListName) -> CodeListOut:
    return CodeListOut.of(standards.codelist(name))


@router.get("/{name}", summary="One standard: columns with type, role, constraints, bounds.")
def show_standard(_actor: AnyActor, name: StandardName) -> StandardOut:
    return StandardOut.model_validate(_shipped(name).summary())
