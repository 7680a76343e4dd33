"""Standards and code lists on the wire."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from entrepot import standards

__all__ = [
    "CodeListOut",
    "CodeOut",
    "FieldOut",
    "ForeignKeyOut",
    "StandardOut",
    "StandardSummary",
    "summary_of",
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
    link_key: str | None = Field(
        default=None,
        description="The concept a link key identifies (e.g. resident-number): columns of "
        "one concept may be joined across holders.",
    )


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
