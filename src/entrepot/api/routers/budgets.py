"""Budgets: ε granted, spent and left per (consumer, dataset), with the dataset's cap.

A consumer sees its own budgets, a provider those on its datasets, an operator all.
Spend is summed from the ledger rows by the ledger itself, never kept by the API.
A dataset's provider sets the dataset's global ε cap.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from entrepot.api._exchange import exchange_of
from entrepot.api.auth import AnyActor, Provider
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.schemas.budgets import BudgetOut, CapIn, CapOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/budgets", tags=["budgets"])

Paging = Annotated[PageParams, Depends(page_params)]


@router.get("", summary="Budgets you hold (consumer) or that spend your datasets.")
def list_budgets(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    closed: Annotated[bool, Query(description="Include revoked and expired budgets.")] = False,
) -> Page[BudgetOut]:
    views = exchange_of(request).budgets.visible(actor, include_closed=closed)
    return page_of(views, paging, lambda view: view)


@router.post("/caps", summary="Set a dataset's global ε cap across consumers (its provider).")
def set_dataset_cap(request: Request, actor: Provider, body: CapIn) -> CapOut:
    return exchange_of(request).budgets.set_cap(actor, body.dataset, body.epsilon)
