"""The mapped class of a dataset's policy, built on :mod:`entrepot.exchange._policy_tables`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped

from entrepot.db import Base
from entrepot.exchange import _policy_tables

__all__ = ["PolicyRecord"]


class PolicyRecord(Base):
    __table__ = _policy_tables.policies

    id: Mapped[int]
    dataset_id: Mapped[int]
    document: Mapped[str]
    digest: Mapped[str]
    set_by: Mapped[str]
    set_at: Mapped[datetime]
