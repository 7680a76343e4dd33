"""Budgets: ε granted, spent and left per (consumer, dataset), with the dataset's cap.

A consumer sees its own budgets, a provider those on its datasets, an operator all.
Spend is summed from the ledger rows by the ledger itself, never kept by the API.
A dataset's provider sets the dataset's global ε cap.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import TypeAdapter

from entrepot.api.auth import AnyActor, Provider
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.schemas.budgets import BudgetOut, CapIn, CapOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/budgets", tags=["budgets"], generate_unique_id_function=operation_id)

Paging = Annotated[PageParams, Depends(page_params)]
_BUDGET = TypeAdapter(BudgetOut)
_CAP = TypeAdapter(CapOut)


@router.get("", summary="Budgets you hold (consumer) or that spend your datasets.")
def list_budgets(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    closed: Annotated[bool, Query(description="Include revoked and expired budgets.")] = False,
) -> Page[BudgetOut]:
    """Each budget with ε granted, spent and left, δ spent, queries used, its validity and
    the dataset's global cap; spend is summed from the ledger, by dataset then grant."""
    body = client_of(request, actor).budgets_page(closed, paging.limit, paging.offset)
    return page_of(body, _BUDGET.validate_python)


@router.post("/caps", summary="Set a dataset's global ε cap across consumers (its provider).")
def set_dataset_cap(request: Request, actor: Provider, body: CapIn) -> CapOut:
    """The cap bounds the ε all consumers together may spend; never below what was spent."""
    cap = client_of(request, actor).set_cap(body.dataset, body.epsilon)
    return _CAP.validate_python(cap)
