"""Providers: the organizations whose datasets the node holds (operators register them).

The list is public to every account, as the catalog is: a provider's slug already
names it in every dataset reference.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from entrepot.api.auth import AnyActor, Operator
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.schemas.providers import ProviderIn, ProviderOut

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/providers", tags=["providers"], generate_unique_id_function=operation_id
)

Paging = Annotated[PageParams, Depends(page_params)]


@router.get("", summary="Every provider of this node, by slug.")
def list_providers(request: Request, actor: AnyActor, paging: Paging) -> Page[ProviderOut]:
    """Providers by slug, each with its name and number of datasets."""
    body = client_of(request, actor).providers_page(paging.limit, paging.offset)
    return page_of(body, ProviderOut.model_validate)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a provider (operator).")
def add_provider(request: Request, actor: Operator, body: ProviderIn) -> ProviderOut:
    """The provider and its organization are made together; provider accounts join it."""
    return ProviderOut.model_validate(client_of(request, actor).add_provider(body.slug, body.name))
