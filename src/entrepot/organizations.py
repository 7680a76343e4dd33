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

from sqlalchemy.orm import Mapped

# An organization's provider_id references the vault's providers table, whose model must
# be declared before an organization is first written (the vault package loads lazily).
import entrepot.vault.models  # noqa: F401
from entrepot.db import Base
from entrepot.exchange import _account_tables
from entrepot.roles import Role

__all__ = ["Organization", "Role"]


class Organization(Base):
    """Mapped on the Core table of :mod:`entrepot.exchange._account_tables`."""

    __table__ = _account_tables.organizations

    id: Mapped[int]
    slug: Mapped[str]
    name: Mapped[str]
    kind: Mapped[str]
    provider_id: Mapped[int | None]
    created_at: Mapped[datetime]
