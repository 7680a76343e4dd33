"""Providers: the organizations whose data a node's vaults hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from entrepot._text import NAME_MAX, check_text
from entrepot.clock import as_utc, rfc3339, utcnow
from entrepot.db import Database, count_rows
from entrepot.errors import Conflict, InvalidInput, NotFound, param
from entrepot.vault import tables
from entrepot.vault.refs import check_slug

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from entrepot.vault.models import Provider

__all__ = ["ProviderInfo", "add_provider", "get_provider", "list_providers"]

# Long enough for any legal name, short enough for a table cell.
_NAME_MAX = 200


@dataclass(frozen=True)
class ProviderInfo:
    slug: str
    name: str
    created_at: datetime
    datasets: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "created_at": as_utc(self.created_at).isoformat(),
            "datasets": self.datasets,
        }

    def to_body(self) -> dict[str, Any]:
        """The provider as the API's ``ProviderOut`` answers it: :meth:`to_dict` in the
        model's order, its time in RFC 3339's ``Z`` form. The local client answers with it
        without building the model; tests pin it equal to the model's dump."""
        return {
            "slug": self.slug,
            "name": self.name,
            "created_at": rfc3339(self.created_at),
            "datasets": self.datasets,
        }


def add_provider(db: Database, slug: str, name: str) -> ProviderInfo:
    """Register a provider and its organization, in one transaction.

    The slug names both: the organization (``--as``, accounts) and the provider in
    dataset references.
    """
    from entrepot.organizations import Organization, Role
    from entrepot.vault.models import Provider

    check_slug(slug, "provider")
    name = check_text(name.strip(), "provider name", most=NAME_MAX)
    if not name or len(name) > _NAME_MAX:
        raise InvalidInput(
            f"provider {slug}: the name must be 1 to {_NAME_MAX} characters",
            hint=f'give the organization\'s name, e.g. {param("name")} "Riverside Hospitals"',
        )
    with db.write() as session:
        if session.scalar(select(Provider.id).where(Provider.slug == slug)) is not None:
            raise Conflict(
                f"provider {slug} already exists",
                hint="list providers with `entrepot provider list`, or choose another slug",
            )
        taken = session.scalar(select(Organization.kind).where(Organization.slug == slug))
        if taken is not None:
            raise Conflict(
                f"organization {slug} already exists as a {taken}",
                hint="a provider is an organization of its own: choose another slug",
            )
        now = utcnow()
        provider = Provider(slug=slug, name=name, created_at=now)
        session.add(provider)
        session.flush()
        session.add(
            Organization(
                slug=slug, name=name, kind=Role.PROVIDER, provider_id=provider.id, created_at=now
            )
        )
        return ProviderInfo(provider.slug, provider.name, provider.created_at)


def list_providers(
    db: Database, *, limit: int | None = None, offset: int = 0
) -> list[ProviderInfo]:
    """Every provider with its number of datasets, by slug: the ``limit`` of them from
    ``offset`` (all when ``limit`` is None)."""
    provider, dataset = tables.providers.c, tables.datasets.c
    count = (
        select(func.count(dataset.id))
        .where(dataset.provider_id == provider.id)
        .correlate(tables.providers)
        .scalar_subquery()
    )
    query = (
        select(provider.slug, provider.name, provider.created_at, count)
        .order_by(provider.slug)
        .limit(limit)
        .offset(offset)
    )
    with db.connect() as connection:
        return [ProviderInfo(*row) for row in connection.execute(query)]


def count_providers(db: Database) -> int:
    """How many providers the node has."""
    with db.connect() as connection:
        return count_rows(connection, select(tables.providers.c.id))


def get_provider(session: Session, slug: str) -> Provider:
    """The provider named ``slug``, or :class:`NotFound` saying how to add it."""
    from entrepot.vault.models import Provider

    provider = session.scalar(select(Provider).where(Provider.slug == slug))
    if provider is None:
        raise NotFound(
            f"no provider {slug!r} on this node",
            hint=f'add it with `entrepot provider add {slug} --name "..."`',
        )
    return provider
