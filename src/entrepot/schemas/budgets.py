"""Budgets and dataset caps on the wire: the ledger's own records, named.

A budget's wire shape is :class:`~entrepot.privacy.ledger.BudgetRecord` with its
dataset, consumer and grant given by name, exactly as the exchange returns it; no
field is restated here. :func:`budgets_json` and :func:`cap_json` give the JSON
bodies a door prints or sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from entrepot.privacy.ledger import BudgetRecord, Cap
from entrepot.schemas.catalog import DATASET_REF
from entrepot.vault.refs import SLUG_MAX

__all__ = ["BudgetOut", "CapIn", "CapOut", "budgets_json", "cap_json"]

BudgetOut = BudgetRecord[str]
CapOut = Cap[str]

_BUDGETS = TypeAdapter(list[BudgetOut])
_CAP = TypeAdapter(CapOut)


def budgets_json(budgets: Sequence[BudgetOut]) -> list[dict[str, Any]]:
    """Budgets as the JSON objects of ``GET /v1/budgets`` and ``entrepot budget --json``."""
    return _BUDGETS.dump_python(list(budgets), mode="json")


def cap_json(cap: CapOut) -> dict[str, Any]:
    """A cap as the JSON object of ``POST /v1/budgets/caps``."""
    body: dict[str, Any] = _CAP.dump_python(cap, mode="json")
    return body


class CapIn(BaseModel):
    dataset: str = Field(
        pattern=DATASET_REF,
        max_length=2 * SLUG_MAX + 1,
        examples=["riverside-hospitals/outpatient-visits"],
    )
    epsilon: float = Field(gt=0, le=1e6, description="The new cap: never below what was spent.")
