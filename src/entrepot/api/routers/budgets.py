"""Budgets: ε granted, spent and left per (consumer, dataset), with the dataset's cap.

A consumer sees its own budgets, a provider those on its datasets, an operator all.
Spend is summed from the ledger rows by the ledger itself, never kept by the API.
A dataset's provider sets the dataset's global ε cap.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from entrepot.api._exchange import exchange_of
from entrepot.api.auth import AnyActor, Provider
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers.catalog import DATASET_REF
from entrepot.vault.refs import SLUG_MAX

__all__ = ["BudgetOut", "CapIn", "CapOut", "router"]

router = APIRouter(prefix="/v1/budgets", tags=["budgets"])

Paging = Annotated[PageParams, Depends(page_params)]


class CapOut(BaseModel):
    dataset: str = Field(examples=["riverside-hospitals/outpatient-visits"])
    epsilon_cap: float = Field(description="Total ε all consumers together may spend.")
    epsilon_spent: float
    epsilon_left: float


class BudgetOut(BaseModel):
    dataset: str
    consumer: str
    grant: str = Field(examples=["GRANT-3"])
    state: str
    epsilon_granted: float
    epsilon_spent: float
    epsilon_left: float
    delta_spent: float
    max_queries: int | None
    queries_used: int
    valid_from: date
    valid_until: date = Field(description="The last day the budget may be spent.")
    cap: CapOut | None = Field(description="The dataset's global ε cap, across consumers.")


class CapIn(BaseModel):
    dataset: str = Field(
        pattern=DATASET_REF,
        max_length=2 * SLUG_MAX + 1,
        examples=["riverside-hospitals/outpatient-visits"],
    )
    epsilon: float = Field(gt=0, le=1e6, description="The new cap: never below what was spent.")


@router.get("", summary="Budgets you hold (consumer) or that spend your datasets.")
def list_budgets(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    closed: Annotated[bool, Query(description="Include revoked and expired budgets.")] = False,
) -> Page[BudgetOut]:
    views = exchange_of(request).budgets.visible(actor, include_closed=closed)
    return page_of(views, paging, lambda view: BudgetOut.model_validate(view.to_dict()))


@router.post("/caps", summary="Set a dataset's global ε cap across consumers (its provider).")
def set_dataset_cap(request: Request, actor: Provider, body: CapIn) -> CapOut:
    cap = exchange_of(request).budgets.set_cap(actor, body.dataset, body.epsilon)
    return CapOut.model_validate(cap.to_dict())
