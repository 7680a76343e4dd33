"""The datasets' policies as a SQLAlchemy Core table.

Declared apart from its mapped class (:class:`entrepot.exchange._policy_models.PolicyRecord`,
built on this table) so that reading a policy runs on Core, without loading the ORM.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Integer, String, Table, Text

from entrepot.db import METADATA

__all__ = ["policies"]

policies = Table(
    "policies",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, unique=True),
    Column("document", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("set_at", DateTime, nullable=False),
)
