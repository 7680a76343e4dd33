"""Rows made for a consumer on a dataset (access requests, grants, releases): who may
see them, and the slugs that name their parties.

Core only, so that listing them loads neither the ORM nor the services that write them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, Table, or_, select

from entrepot.exchange._account_tables import organizations
from entrepot.vault.tables import datasets, providers

if TYPE_CHECKING:
    from entrepot.exchange.actors import Actor

__all__ = ["named", "visible_to"]


def visible_to(query: Select[Any], table: Table, actor: Actor) -> Select[Any]:
    """``query`` on the rows of ``table`` the actor may see: all for administrators, else
    its own as a consumer and those on its datasets as a provider."""
    if actor.administers:
        return query
    mine = table.c.consumer_id == (actor.org_id if actor.org_id is not None else -1)
    if actor.provider_id is None:
        return query.where(mine)
    owned = select(datasets.c.id).where(datasets.c.provider_id == actor.provider_id)
    return query.where(or_(mine, table.c.dataset_id.in_(owned)))


def named(query: Select[Any], table: Table) -> Select[Any]:
    """``query`` on ``table``, with the slugs that name each row's consumer, provider and
    dataset (columns ``consumer``, ``provider``, ``dataset``)."""
    return (
        query.add_columns(
            organizations.c.slug.label("consumer"),
            providers.c.slug.label("provider"),
            datasets.c.slug.label("dataset"),
        )
        .join_from(table, datasets, datasets.c.id == table.c.dataset_id)
        .join(providers, providers.c.id == datasets.c.provider_id)
        .join(organizations, organizations.c.id == table.c.consumer_id)
    )
