"""Budgets and dataset caps on the wire: the ledger's own records, named.

A budget's wire shape is :class:`~entrepot.privacy.ledger.BudgetRecord` with its
dataset, consumer and grant given by name, exactly as the exchange returns it; no
field is restated here. Its ``to_body`` (and its cap's) gives the JSON body a door
prints or sends, pinned equal to pydantic's dump of these shapes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictFloat

from entrepot._numbers import MAX_EPSILON
from entrepot.privacy.ledger import BudgetRecord, Cap
from entrepot.schemas.catalog import DATASET_REF
from entrepot.vault.refs import SLUG_MAX

__all__ = ["BudgetOut", "CapIn", "CapOut"]

BudgetOut = BudgetRecord[str]
CapOut = Cap[str]


class CapIn(BaseModel):
    dataset: str = Field(
        pattern=DATASET_REF,
        max_length=2 * SLUG_MAX + 1,
        examples=["riverside-hospitals/outpatient-visits"],
    )
    epsilon: StrictFloat = Field(
        gt=0, le=MAX_EPSILON, description="The new cap: never below what was spent."
    )
