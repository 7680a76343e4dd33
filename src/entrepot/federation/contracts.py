"""A local consumer's requests and grants on peers: the read-only copy this node keeps.

The copy is written only from a peer's signed answers (a request forwarded by
:func:`entrepot.federation.remote.forward_access`, a list read by
:func:`remote_grants`), each contract checked first, and never enforced here: a
grant lives and is enforced on its peer. Read and written on the Core tables of
:mod:`entrepot.federation._tables`, so that listing a consumer's contracts loads
neither the ORM nor, when it asked no peer, the peers' transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from entrepot._numbers import MAX_EPSILON
from entrepot._text import check_text
from entrepot.clock import rfc3339, utcnow
from entrepot.db import Database
from entrepot.errors import EntrepotError, InvalidInput, PeerError
from entrepot.federation import _tables
from entrepot.federation._tables import peers

if TYPE_CHECKING:
    from entrepot.exchange import Exchange
    from entrepot.exchange.actors import Actor

__all__ = ["CONTRACTS_PATH", "keep", "remote_grants"]

CONTRACTS_PATH = "federation/v1/access/list"


# A contract's texts as the copy's columns hold them (the peer's ids are REQ-n or GRANT-n).
_TEXTS = {"id": 64, "dataset": 200, "state": 32, "purpose": 200, "valid_until": 32}


def _row(peer: str, contract: Any) -> dict[str, Any]:
    """A peer's contract as the copy's row, every field checked before it is kept: the
    copy is shown in the consumer's terminal and pages, as a feed's datasets are."""
    try:
        if not isinstance(contract, dict):
            raise ValueError("a contract is not an object")
        texts = {name: contract.get(name, "") for name in _TEXTS}
        for name, most in _TEXTS.items():
            if not isinstance(texts[name], str):
                raise ValueError(f"its {name} is not text")
            check_text(texts[name], name, most=most)
        epsilon = contract.get("epsilon") or 0
        if not isinstance(epsilon, int | float) or isinstance(epsilon, bool):
            raise ValueError("its epsilon is not a number")
        if not 0 <= epsilon <= MAX_EPSILON:
            raise ValueError(f"its epsilon is not between 0 and {MAX_EPSILON:g}")
    except (InvalidInput, ValueError) as wrong:
        said = wrong.message if isinstance(wrong, InvalidInput) else str(wrong)
        raise PeerError(
            f"peer {peer} answered a contract that is not valid: {said.removeprefix('the ')}",
            hint="the peer may run another version of entrepot; ask its operator",
            peer=peer,
            rule="contract_shape",
        ) from None
    return {
        "contract": texts["id"],
        "dataset": texts["dataset"],
        "state": texts["state"],
        "purpose": texts["purpose"],
        "epsilon": float(epsilon),
        "valid_until": texts["valid_until"],
    }


def keep(
    db: Database, peer_id: int, peer: str, org: str, contracts: list[Any], *, whole: bool
) -> None:
    """Keep ``contracts`` (the peer's words) in ``org``'s read-only copy of its contracts
    on the peer ``peer_id`` (named ``peer``); the ``whole`` list, as read from the peer,
    replaces the copy. A list holding a contract that is not valid, or one id twice, is
    refused whole (:class:`PeerError`, ``contract_shape``) and the copy left as it was."""
    now = utcnow()
    rows = [
        {"peer_id": peer_id, "org_slug": org, **_row(peer, c), "refreshed_at": now}
        for c in contracts
    ]
    if len({row["contract"] for row in rows}) < len(rows):
        raise PeerError(
            f"peer {peer} answered the same contract twice",
            hint="the peer may run another version of entrepot; ask its operator",
            peer=peer,
            rule="contract_shape",
        )
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
        if not isinstance(contracts, list):
            continue
        try:
            keep(db, peer_id, name, org, contracts, whole=True)
        except PeerError as refused:
            # The last copy stays, marked as not fresh; the operator sees why.
            exchange.peers.note(name, f"error: {refused.message}")
            continue
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
