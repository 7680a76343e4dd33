"""Providers: the organizations whose datasets the node holds (operators register them).

The list is public to every account, as the catalog is: a provider's slug already
names it in every dataset reference.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field

from entrepot.api._types import UtcDateTime
from entrepot.api.auth import AnyActor, Operator
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.vault.providers import ProviderInfo, add_provider, list_providers

__all__ = ["ProviderIn", "ProviderOut", "router"]

router = APIRouter(prefix="/v1/providers", tags=["providers"])

Paging = Annotated[PageParams, Depends(page_params)]


class ProviderIn(BaseModel):
    # Checked by the library, whose refusal says what a slug may hold and suggests one.
    slug: str = Field(
        min_length=1,
        max_length=200,
        description="Lowercase letters, digits and single hyphens, at most 64 characters.",
        examples=["riverside-hospitals"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["Riverside Hospitals"])


class ProviderOut(BaseModel):
    slug: str
    name: str
    created_at: UtcDateTime
    datasets: int = Field(ge=0, description="Datasets the provider has published.")

    @classmethod
    def of(cls, info: ProviderInfo) -> ProviderOut:
        return cls.model_validate(info.to_dict())


@router.get("", summary="Every provider of this node, by slug.")
def list_all(request: Request, _actor: AnyActor, paging: Paging) -> Page[ProviderOut]:
    return page_of(list_providers(request.app.state.node.db), paging, ProviderOut.of)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a provider (operator).")
def add(request: Request, _actor: Operator, body: ProviderIn) -> ProviderOut:
    return ProviderOut.of(add_provider(request.app.state.node.db, body.slug, body.name))
