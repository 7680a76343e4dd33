"""Providers: the organizations whose datasets the node holds (operators register them).

The list is public to every account, as the catalog is: a provider's slug already
names it in every dataset reference.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from entrepot.api.auth import AnyActor, Operator
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.schemas.providers import ProviderIn, ProviderOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/providers", tags=["providers"])

Paging = Annotated[PageParams, Depends(page_params)]


@router.get("", summary="Every provider of this node, by slug.")
def list_all(request: Request, actor: AnyActor, paging: Paging) -> Page[ProviderOut]:
    return page_of(client_of(request, actor).providers(), paging, ProviderOut.model_validate)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a provider (operator).")
def add(request: Request, actor: Operator, body: ProviderIn) -> ProviderOut:
    return ProviderOut.model_validate(client_of(request, actor).add_provider(body.slug, body.name))
