"""A local consumer's requests and grants on peers: the read-only copy this node keeps.

The copy is written only from a peer's signed answers (a request forwarded by
:func:`entrepot.federation.remote.forward_access`, a list read by
:func:`remote_grants`) and never enforced here: a grant lives and is enforced on its
peer. Read and written on the Core tables of :mod:`entrepot.federation._tables`, so
that listing a consumer's contracts loads neither the ORM nor, when it asked no peer,
the peers' transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from entrepot.clock import rfc3339, utcnow
from entrepot.db import Database
from entrepot.errors import EntrepotError
from entrepot.federation import _tables
from entrepot.federation._tables import peers

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor

__all__ = ["CONTRACTS_PATH", "keep", "remote_grants"]

CONTRACTS_PATH = "federation/v1/access/list"


def keep(db: Database, peer_id: int, org: str, contracts: list[Any], *, whole: bool) -> None:
    """Keep ``contracts`` (the peer's words) in ``org``'s read-only copy of its contracts
    on the peer ``peer_id``; the ``whole`` list, as read from the peer, replaces the copy."""
    rows = [
        {
            "peer_id": peer_id,
            "org_slug": org,
            "contract": str(c.get("id", "")),
            "dataset": str(c.get("dataset", "")),
            "state": str(c.get("state", "")),
            "purpose": str(c.get("purpose", "")),
            "epsilon": float(c.get("epsilon") or 0),
            "valid_until": str(c.get("valid_until", "")),
            "refreshed_at": utcnow(),
        }
        for c in contracts
        if isinstance(c, dict)
    ]
    held = _tables.remote_grants.c
    replaced = delete(_tables.remote_grants).where(held.peer_id == peer_id, held.org_slug == org)
    if not whole:
        replaced = replaced.where(held.contract.in_([r["contract"] for r in rows]))
    with db.write() as session:
        session.execute(replaced)
        if rows:
            session.execute(insert(_tables.remote_grants), rows)


def remote_grants(exchange: Exchange, actor: Actor) -> list[dict[str, Any]]:
    """``actor``'s requests and grants on peers, each marked with its ``node``: refreshed
    from every peer it asked, or as last read from a peer that cannot be reached."""
    if not actor.org_slug:
        return []
    org, db = actor.org_slug, exchange.node.db
    held = _tables.remote_grants.c
    with db.connect() as connection:
        asked = connection.execute(
            select(peers.c.id, peers.c.name).where(
                peers.c.id.in_(select(held.peer_id).where(held.org_slug == org))
            )
        ).all()
    fresh: set[int] = set()
    for peer_id, name in asked:
        try:
            with exchange.peers.call(name) as call:
                answered = call.call("POST", CONTRACTS_PATH, {"consumer": org}, idempotent=True)
        except EntrepotError:
            continue
        contracts = answered.get("contracts") if isinstance(answered, dict) else None
        if isinstance(contracts, list):
            keep(db, peer_id, org, contracts, whole=True)
            fresh.add(peer_id)
    with db.connect() as connection:
        found = connection.execute(
            select(_tables.remote_grants, peers.c.name.label("node"))
            .join_from(_tables.remote_grants, peers, peers.c.id == held.peer_id)
            .where(held.org_slug == org)
            .order_by(peers.c.name, held.id)
        ).all()
    return [
        {
            "node": row.node,
            "id": row.contract,
            "dataset": row.dataset,
            "state": row.state,
            "purpose": row.purpose,
            "epsilon": row.epsilon,
            "valid_until": row.valid_until,
            "refreshed_at": rfc3339(row.refreshed_at),
            "fresh": row.peer_id in fresh,
        }
        for row in found
    ]
