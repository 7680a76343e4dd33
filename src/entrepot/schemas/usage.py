"""Usage and invoices on the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["InvoiceOut", "LineOut", "TotalOut"]


class LineOut(BaseModel):
    grant: str
    consumer: str
    provider: str
    dataset: str
    action: str
    uses: int
    epsilon: float
    rows_scanned: int | None = Field(
        description="Rows the uses read: for the provider and operators only (null for "
        "a consumer, as it is a version's exact row count)."
    )
    amount: str


class TotalOut(BaseModel):
    uses: int
    epsilon: float
    rows_scanned: int | None = Field(
        description="Rows the uses read: for the provider and operators only (null for "
        "a consumer, as it is a version's exact row count)."
    )
    amount: str


class InvoiceOut(BaseModel):
    party: str
    role: str
    month: str
    currency: str
    lines: list[LineOut]
    total: TotalOut
