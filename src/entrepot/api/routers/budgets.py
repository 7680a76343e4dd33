"""Budgets: ε granted, spent and left per (consumer, dataset), with the dataset's cap.

A consumer sees its own budgets, a provider those on its datasets, an operator all.
Spend is summed from the ledger rows by the ledger itself, never kept by the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from entrepot.api._types import UtcDateTime
from entrepot.api.auth import AnyActor
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.errors import Forbidden
from entrepot.exchange.accounts import Actor, Organization, Role
from entrepot.exchange.node import Node
from entrepot.privacy.ledger import BudgetRow, Ledger
from entrepot.vault.models import Dataset, Provider

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["budgets"])

Paging = Annotated[PageParams, Depends(page_params)]


class CapOut(BaseModel):
    epsilon_cap: float
    epsilon_spent: float
    epsilon_left: float


class BudgetOut(BaseModel):
    grant: str
    consumer: str
    dataset: str
    state: str
    epsilon_granted: float
    epsilon_spent: float
    epsilon_left: float
    delta_spent: float
    max_queries: int | None
    queries_used: int
    valid_from: UtcDateTime
    valid_until: UtcDateTime
    dataset_cap: CapOut | None


def _names(node: Node) -> tuple[dict[int, str], dict[int, str]]:
    with node.db.read() as session:
        datasets = {
            dataset_id: f"{provider}/{slug}"
            for dataset_id, provider, slug in session.execute(
                select(Dataset.id, Provider.slug, Dataset.slug).join(Provider)
            )
        }
        orgs = {
            org_id: slug
            for org_id, slug in session.execute(select(Organization.id, Organization.slug))
        }
    return datasets, orgs


def _visible(node: Node, ledger: Ledger, actor: Actor, closed: bool) -> list[BudgetRow]:
    if actor.role == Role.CONSUMER:
        return ledger.budgets(consumer_id=actor.org_id, include_closed=closed)
    if actor.role == Role.PROVIDER:
        with node.db.read() as session:
            own = list(
                session.scalars(select(Dataset.id).where(Dataset.provider_id == actor.provider_id))
            )
        return ledger.budgets(dataset_ids=own, include_closed=closed)
    if actor.administers:
        return ledger.budgets(include_closed=closed)
    raise Forbidden(
        f"a {actor.role} account has no budgets",
        hint="budgets belong to consumers; providers see those on their datasets",
    )


@router.get("/budgets", summary="Budgets you hold (consumer) or that spend your datasets.")
def list_budgets(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    closed: Annotated[bool, Query(description="Include revoked and expired budgets.")] = False,
) -> Page[BudgetOut]:
    node: Node = request.app.state.node
    rows = _visible(node, Ledger(node.db), actor, closed)
    datasets, orgs = _names(node)

    def out(row: BudgetRow) -> BudgetOut:
        cap = row.cap
        return BudgetOut(
            grant=f"GRANT-{row.grant_id}",
            consumer=orgs.get(row.consumer_id, str(row.consumer_id)),
            dataset=datasets.get(row.dataset_id, str(row.dataset_id)),
            state=row.state,
            epsilon_granted=row.epsilon_granted,
            epsilon_spent=row.epsilon_spent,
            epsilon_left=row.epsilon_left,
            delta_spent=row.delta_spent,
            max_queries=row.max_queries,
            queries_used=row.queries_used,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            dataset_cap=None
            if cap is None
            else CapOut(
                epsilon_cap=cap.epsilon_cap,
                epsilon_spent=cap.epsilon_spent,
                epsilon_left=cap.epsilon_left,
            ),
        )

    return page_of(rows, paging, out)
