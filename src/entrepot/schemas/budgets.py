"""Budgets and dataset caps on the wire."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from entrepot.schemas.catalog import DATASET_REF
from entrepot.vault.refs import SLUG_MAX

__all__ = ["BudgetOut", "CapIn", "CapOut"]


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
