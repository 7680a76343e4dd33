"""A federated catalog search: this node's catalog and every peer's cached feed.

The node's own datasets are found by its full-text index, ranked; the peers' come
from the copy of their feeds (pulled first, see :mod:`entrepot.federation.feed`),
where every word must appear in the title, description, provider, standard or
reference. Both are kept to the same :class:`~entrepot.exchange.catalog.Facets`
(provider, standard, region, sector), by the catalog's one rule over the copy's
columns. Each result names its node; a peer that cannot be reached keeps its
last copy, and ``entrepot peer list`` shows what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from entrepot.errors import InvalidInput
from entrepot.exchange.catalog import FacetColumns, Facets, search_terms
from entrepot.federation.feed import sync_all
from entrepot.federation.models import Peer, RemoteDataset, RemoteDatasetRegion
from entrepot.federation.peers import identity_of
from entrepot.standards.scope import Term, region, sector

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor

__all__ = ["REMOTE_COLUMNS", "federated_search", "remote_datasets"]


# The copies of peers' catalogs, as the catalog's facets look at them: the same rule
# (:meth:`Facets.restrict`) keeps this node's datasets and its peers'.
REMOTE_COLUMNS = FacetColumns(
    id=RemoteDataset.id,
    provider=RemoteDataset.provider_slug,
    standard=RemoteDataset.standard,
    sector=RemoteDataset.sector,
    region_owner=RemoteDatasetRegion.dataset_id,
    region_code=RemoteDatasetRegion.code,
)


def _term(lookup: Callable[[str], Term], code: str) -> dict[str, str]:
    """A code a peer declared, labelled from this node's code lists when it knows it."""
    try:
        return lookup(code).to_dict()
    except InvalidInput:
        return {"code": code, "label": code, "codelist": ""}


def _remote(row: RemoteDataset, node: str) -> dict[str, Any]:
    document = row.document
    latest = row.latest_version
    regions = document.get("entrepot:regions", [])
    return {
        "dataset": row.dataset,
        "sql_name": str(document.get("entrepot:sqlName", "")),
        "title": row.title,
        "description": row.description,
        "provider": row.provider,
        "standard": row.standard,
        "regions": [_term(region, code) for code in regions],
        "sector": None if row.sector is None else _term(sector, row.sector),
        "versions": latest or 0,
        "latest_version": latest,
        "rows": None,
        "updated_at": row.modified,
        "score": None,
        "node": node,
    }


def remote_datasets(
    exchange: Exchange, query: str | None, limit: int, facets: Facets = Facets()
) -> list[dict[str, Any]]:
    """The peers' cached datasets matching every word of ``query`` (all if None) within
    ``facets``."""
    statement = facets.restrict(
        select(RemoteDataset, Peer.name).join(Peer, Peer.id == RemoteDataset.peer_id),
        REMOTE_COLUMNS,
    )
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
    exchange: Exchange,
    viewer: Actor | None,
    query: str,
    limit: int,
    facets: Facets = Facets(),
) -> list[dict[str, Any]]:
    """This node's matches, then the peers', each marked with its node; both kept to
    ``facets`` by the catalog's one rule."""
    from entrepot.schemas.catalog import DatasetOut

    sync_all(exchange)
    own = identity_of(exchange.node).name
    catalog = exchange.catalog(viewer)
    local = [
        {**DatasetOut.of(s).model_dump(mode="json"), "node": own}
        for s in catalog.search(query, facets=facets, limit=min(limit, catalog.max_results))
    ]
    return local + remote_datasets(exchange, query, max(0, limit - len(local)), facets)
