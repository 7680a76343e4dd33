"""Publishing on the wire: what a publish returns."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from entrepot.schemas.catalog import VersionOut

__all__ = ["PublishedOut"]


class PublishedOut(VersionOut):
    rows_total: int = Field(description="Rows in the uploaded file.")
    quarantined: int = Field(description="Rows kept in quarantine with their reasons.")
    report: dict[str, Any] = Field(description="The validation report.")
