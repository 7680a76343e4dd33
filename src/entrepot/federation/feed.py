"""The signed catalog feed a node publishes, and the copy of its peers' feeds it keeps.

The feed (``GET /federation/v1/catalog?since=CURSOR``) is a DCAT-3 JSON-LD
``dcat:Catalog`` holding the datasets modified at or after the cursor, with
entrepot's terms beside DCAT's: ``entrepot:node`` (who publishes it),
``entrepot:cursor`` (the newest modification time, to send as ``since`` next time),
``entrepot:present`` (every dataset the node offers now, so that one withdrawn
disappears from every peer at its next pull) and, per dataset, its SQL name and
standard. It holds the public metadata of the DCAT export and nothing more.

A peer's feed is pulled over a signed request and its answer checked against the
key the operator added (:mod:`entrepot.federation.envelope`); then its datasets
replace those cached for the peer, read-only, marked with the peer's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import delete, insert, select

from entrepot.errors import EntrepotError, InvalidInput, PeerError
from entrepot.exchange.dcat import CONTEXT, export_dcat
from entrepot.federation.models import Peer, RemoteDataset
from entrepot.federation.peers import identity_of

if TYPE_CHECKING:
    from entrepot.exchange import Exchange

__all__ = ["FEED_PATH", "NAMESPACE", "catalog_feed", "sync", "sync_all"]

FEED_PATH = "federation/v1/catalog"
NAMESPACE = "https://w3id.org/entrepot/ns#"


def _modified(dataset: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(dataset["dct:modified"]["@value"])


def catalog_feed(exchange: Exchange, since: str | None) -> dict[str, Any]:
    """The node's catalog feed: datasets modified at or after ``since`` (all without one)."""
    try:
        after = None if not since else datetime.fromisoformat(since)
    except ValueError:
        raise InvalidInput(
            f"{since!r} is not a cursor of this feed",
            hint="send the `entrepot:cursor` of the last feed read, or none for all",
        ) from None
    settings = exchange.settings
    catalog = exchange.catalog()
    document = export_dcat(catalog, base_url=settings.base_url, license=settings.license)
    names = {str(s.ref): s for s in catalog.datasets()}
    datasets = document["dcat:dataset"]
    changed = []
    for entry in datasets:
        if after is not None and _modified(entry) < after:
            continue
        summary = names[entry["dct:identifier"]]
        entry["entrepot:sqlName"] = summary.ref.sql_name
        entry["entrepot:standard"] = summary.standard
        changed.append(entry)
    newest = max((_modified(d) for d in datasets), default=after)
    return {
        **{key: value for key, value in document.items() if key != "dcat:service"},
        "@context": {**CONTEXT, "entrepot": NAMESPACE},
        "entrepot:node": identity_of(exchange.node).to_dict(),
        "entrepot:cursor": None if newest is None else newest.isoformat(),
        "entrepot:present": sorted(names),
        "dcat:dataset": changed,
    }


def _garbage(peer: str, what: str) -> PeerError:
    return PeerError(
        f"peer {peer} sent a catalog feed that is not valid: {what}",
        hint="the peer may run another version of entrepot; ask its operator",
        peer=peer,
        rule="feed_shape",
    )


def _row(peer: str, entry: Any) -> dict[str, Any]:
    try:
        version = entry.get("dcat:version")
        return {
            "dataset": str(entry["dct:identifier"]),
            "title": str(entry["dct:title"])[:300],
            "description": str(entry.get("dct:description", ""))[:5000],
            "provider": str(entry["dct:publisher"]["foaf:name"])[:200],
            "standard": str(entry["entrepot:standard"])[:200],
            "latest_version": None if version is None else int(version),
            "modified": str(entry["dct:modified"]["@value"])[:64],
            "document": entry,
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _garbage(peer, f"a dataset lacks {exc}") from None


def sync(exchange: Exchange, name: str) -> dict[str, Any]:
    """Pull ``name``'s feed since the last cursor and update its cached datasets."""
    peers = exchange.peers
    peer = peers.get(name)
    query = urlencode({"since": peer.catalog_cursor}) if peer.catalog_cursor else ""
    try:
        with peers.call(name) as call:
            feed = call.call("GET", FEED_PATH + (f"?{query}" if query else ""))
        if not isinstance(feed, dict):
            raise _garbage(name, "not an object")
        present = feed.get("entrepot:present")
        datasets = feed.get("dcat:dataset")
        cursor = feed.get("entrepot:cursor")
        if not isinstance(present, list) or not isinstance(datasets, list):
            raise _garbage(name, "no entrepot:present or dcat:dataset list")
        if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 64):
            raise _garbage(name, "its cursor is not a short string")
        rows = [_row(name, entry) for entry in datasets]
    except EntrepotError as error:
        peers.note(name, f"error: {error.message}")
        raise
    kept = {str(ref) for ref in present}
    with exchange.node.db.write() as session:
        stored = session.scalar(select(Peer).where(Peer.id == peer.id))
        if stored is None:
            return {"peer": name, "updated": 0, "removed": 0}
        cached = {
            r.dataset: r
            for r in session.scalars(select(RemoteDataset).where(RemoteDataset.peer_id == peer.id))
        }
        added: dict[str, dict[str, Any]] = {}
        for row in rows:
            if row["dataset"] not in kept:
                continue
            found = cached.get(row["dataset"])
            if found is None:
                added[row["dataset"]] = {"peer_id": peer.id, **row}
            else:
                for key, value in row.items():
                    setattr(found, key, value)
        if added:
            # One executemany for the new ones, not an ORM object each (10,000 in a sync).
            session.execute(insert(RemoteDataset), list(added.values()))
        gone = [ref for ref in cached if ref not in kept]
        if gone:
            session.execute(
                delete(RemoteDataset).where(
                    RemoteDataset.peer_id == peer.id, RemoteDataset.dataset.in_(gone)
                )
            )
        stored.catalog_cursor = cursor
    peers.note(name, "ok", synced=True)
    return {"peer": name, "updated": len(rows), "removed": len(gone)}


def sync_all(exchange: Exchange) -> list[dict[str, Any]]:
    """Pull every peer's feed; a peer that fails is reported, the others still pulled."""
    results: list[dict[str, Any]] = []
    for peer in exchange.peers.list():
        try:
            results.append(sync(exchange, peer["name"]))
        except EntrepotError as error:
            results.append({"peer": peer["name"], "error": error.to_dict()["error"]})
    return results
