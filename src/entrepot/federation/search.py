"""A federated catalog search: this node's catalog and every peer's cached feed.

The node's own datasets are found by its full-text index, ranked; the peers' come
from the copy of their feeds (pulled first, see :mod:`entrepot.federation.feed`),
where every word must appear in the title, description, provider, standard or
reference. Each result names its node; a peer that cannot be reached keeps its
last copy, and ``entrepot peer list`` shows what went wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from entrepot.exchange.catalog import search_terms
from entrepot.federation.feed import sync_all
from entrepot.federation.models import Peer, RemoteDataset
from entrepot.federation.peers import identity_of

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor

__all__ = ["federated_search", "remote_datasets"]


def _remote(row: RemoteDataset, node: str) -> dict[str, Any]:
    document = row.document
    latest = row.latest_version
    return {
        "dataset": row.dataset,
        "sql_name": str(document.get("entrepot:sqlName", "")),
        "title": row.title,
        "description": row.description,
        "provider": row.provider,
        "standard": row.standard,
        "versions": latest or 0,
        "latest_version": latest,
        "rows": None,
        "updated_at": row.modified,
        "score": None,
        "node": node,
    }


def remote_datasets(exchange: Exchange, query: str | None, limit: int) -> list[dict[str, Any]]:
    """The peers' cached datasets matching every word of ``query`` (all if None)."""
    statement = select(RemoteDataset, Peer.name).join(Peer, Peer.id == RemoteDataset.peer_id)
    if query is not None:
        terms = search_terms(query)
        if not terms:
            return []
        text = func.lower(
            RemoteDataset.title
            + " "
            + RemoteDataset.description
            + " "
            + RemoteDataset.provider
            + " "
            + RemoteDataset.standard
            + " "
            + RemoteDataset.dataset
        )
        statement = statement.where(and_(*(text.contains(term) for term in terms)))
    statement = statement.order_by(Peer.name, RemoteDataset.dataset).limit(limit)
    with exchange.node.db.read() as session:
        return [_remote(row, name) for row, name in session.execute(statement).all()]


def federated_search(
    exchange: Exchange, viewer: Actor | None, query: str, limit: int
) -> list[dict[str, Any]]:
    """This node's matches, then the peers', each marked with its node."""
    from entrepot.schemas.catalog import DatasetOut

    sync_all(exchange)
    own = identity_of(exchange.node).name
    catalog = exchange.catalog(viewer)
    local = [
        {**DatasetOut.of(s).model_dump(mode="json"), "node": own}
        for s in catalog.search(query, limit=min(limit, catalog.max_results))
    ]
    return local + remote_datasets(exchange, query, max(0, limit - len(local)))
