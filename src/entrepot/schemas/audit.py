"""The transparency log on the wire: entries, heads, proofs, reconciliation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ConsistencyOut",
    "DifferenceOut",
    "EntryOut",
    "HeadOut",
    "InclusionOut",
    "ReconciliationOut",
]


class EntryOut(BaseModel):
    index: int
    entry: dict[str, Any]


class HeadOut(BaseModel):
    format: str
    key: str = Field(description="The node's Ed25519 public key, hex.")
    root: str
    size: int
    time: str
    signature: str


class InclusionOut(BaseModel):
    index: int
    size: int
    entry: str
    leaf_hash: str
    inclusion: list[str]
    root: str
    head: HeadOut | None


class ConsistencyOut(BaseModel):
    size1: int
    size2: int
    root1: str
    root2: str
    consistency: list[str]


class DifferenceOut(BaseModel):
    what: str
    subject: str
    problem: str


class ReconciliationOut(BaseModel):
    ok: bool
    checked: dict[str, int] = Field(description="Records compared, by kind.")
    differences: list[DifferenceOut]
