"""Organizations: every party of a node, one row each, in one role.

An organization is an ``operator`` (runs the node), a ``provider`` (holds data in
the node's vaults), a ``consumer`` or an ``auditor``. A provider is this same noun:
its organization references its vault row (:class:`entrepot.vault.models.Provider`)
and both are written in one transaction by :func:`entrepot.vault.add_provider`, so
no provider exists without its organization, nor one made later on first use. Accounts and tokens
(:mod:`entrepot.exchange.accounts`) belong to an organization.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

# An organization's provider_id references the vault's providers table, whose model must
# be declared before an organization is first written (the vault package loads lazily).
import entrepot.vault.models  # noqa: F401
from entrepot.db import Base
from entrepot.roles import Role

__all__ = ["Organization", "Role"]


_ROLES = "', '".join(Role)


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (CheckConstraint(f"kind IN ('{_ROLES}')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
