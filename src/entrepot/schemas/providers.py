"""Providers on the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

from entrepot._text import NAME_MAX
from entrepot.schemas._types import UtcDateTime

__all__ = ["ProviderIn", "ProviderOut"]


class ProviderIn(BaseModel):
    # Checked by the library, whose refusal says what a slug may hold and suggests one.
    slug: str = Field(
        min_length=1,
        max_length=200,
        description="Lowercase letters, digits and single hyphens, at most 64 characters.",
        examples=["riverside-hospitals"],
    )
    name: str = Field(min_length=1, max_length=NAME_MAX, examples=["Riverside Hospitals"])


class ProviderOut(BaseModel):
    slug: str
    name: str
    created_at: UtcDateTime
    datasets: int = Field(ge=0, description="Datasets the provider has published.")
