"""Openings on the wire: of a logged query and of a version's content."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ContentOpeningOut", "QueryOpeningOut"]


class QueryOpeningOut(BaseModel):
    format: str
    kind: str
    query_text: str
    nonce: str = Field(description="The 32-byte key of the query's commitment, hex.")
    query_commitment: str


class ContentOpeningOut(BaseModel):
    format: str
    kind: str
    dataset: str
    version: str
    content_sha256: str = Field(description="SHA-256 of the version's stored Parquet file.")
    key: str = Field(description="The version's 32-byte commitment key, hex.")
    content_commitment: str
