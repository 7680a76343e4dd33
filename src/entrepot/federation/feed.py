"""The signed catalog feed a node publishes, and the copy of its peers' feeds it keeps.

The feed (``GET /federation/v1/catalog?since=CURSOR&limit=N``) is a DCAT-3 JSON-LD
``dcat:Catalog`` holding one page of the datasets modified after the cursor, oldest
first, with entrepot's terms beside DCAT's: ``entrepot:node`` (who publishes it),
``entrepot:cursor`` (the page's last dataset, as its modification time and id, to
send as ``since`` for the next page), ``entrepot:more`` (whether a page follows),
``entrepot:present`` on the last page (every dataset the node offers now, so that
one withdrawn disappears from every peer at its next pull) and, per dataset, its SQL
name, standard, region codes and sector code (the catalog's facets). It holds the public
metadata of the DCAT export and nothing more.

A peer's feed is pulled page by page over signed requests, each answer checked
against the key the operator added (:mod:`entrepot.federation.envelope`); each
page's datasets are written to the copy kept for the peer with the page's cursor,
in one transaction, so a pull that stops halfway leaves a copy that is whole up to
its cursor and goes on from there. The copy is read-only, marked with the peer's
name.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import Text, and_, cast, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from entrepot._text import NAME_MAX, TEXT_MAX, check_text
from entrepot.clock import as_utc
from entrepot.errors import EntrepotError, InvalidInput, PeerError
from entrepot.exchange.catalog import DatasetPage, DatasetSummary
from entrepot.exchange.dcat import CONTEXT, catalog_header, dataset_entry
from entrepot.federation.models import Peer, RemoteDataset, RemoteDatasetRegion
from entrepot.federation.peers import identity_of
from entrepot.standards.schema import Standard, parse_standard
from entrepot.standards.scope import MAX_REGIONS, Term, region, sector
from entrepot.vault import DatasetRef
from entrepot.vault.models import Dataset, DatasetRegion, Provider, Version
from entrepot.vault.refs import SLUG_MAX

if TYPE_CHECKING:
    from entrepot.exchange import Exchange

__all__ = ["FEED_PAGE", "FEED_PATH", "NAMESPACE", "catalog_feed", "sync", "sync_all"]

FEED_PATH = "federation/v1/catalog"
NAMESPACE = "https://w3id.org/entrepot/ns#"
# Datasets of one page: about 2 KB each in JSON, so a page of 1,000 is about 2 MB,
# well under a peer's `peer_response_max_bytes` (8 MiB); a feed of 10,000 datasets in
# one answer was 20.9 MB (benchmarks/RESULTS.md).
FEED_PAGE = 1000
# Pages one pull reads at most (ten million datasets): a peer that always says that
# another page follows cannot keep a pull going.
MAX_PAGES = 10_000
# Datasets deleted from a peer's copy per statement, under any database's limit of
# bound values.
_CHUNK = 500
# The longest region or sector code a peer may declare (the catalog stores 16 characters).
MAX_CODE = 16
# The most characters of one dataset's entry in a feed, as JSON: an entry is about 2 KB
# (FEED_PAGE), and its copy keeps it whole, so a peer cannot fill this node's disk with
# a few datasets' worth of padding.
ENTRY_MAX = 64 * 1024
# The deepest an entry nests: DCAT's own entries nest 4 levels; a JSON document much
# deeper exhausts the stack of the encoder that stores it.
ENTRY_DEPTH = 16
# The largest version number a copy keeps (its column is a 32-bit integer).
_VERSION_MAX = 2**31 - 1


def _cursor(since: str | None) -> tuple[datetime, int] | None:
    """``since`` as (modification time, dataset id); a bare time is every dataset
    modified at or after it (the cursor of an earlier feed)."""
    if not since:
        return None
    moment, bar, rest = since.partition("|")
    try:
        after = as_utc(datetime.fromisoformat(moment)).replace(tzinfo=None)
        return after, int(rest) if bar else 0
    except ValueError:
        raise InvalidInput(
            f"{since!r} is not a cursor of this feed",
            hint="send the `entrepot:cursor` of the last feed read, or none for all",
        ) from None


def _cursor_text(modified: datetime, dataset_id: int) -> str:
    return f"{as_utc(modified).isoformat()}|{dataset_id}"


def _page_rows(session: Session, after: tuple[datetime, int] | None, limit: int) -> list[Any]:
    """The ``limit`` datasets after the cursor (one more, to tell whether a page follows),
    with what their entries need, in one query."""
    latest = (
        select(func.max(Version.number)).where(Version.dataset_id == Dataset.id).scalar_subquery()
    )
    versions = select(func.count(Version.id)).where(Version.dataset_id == Dataset.id)
    query = (
        select(
            Dataset.id,
            Dataset.slug,
            Dataset.title,
            Dataset.description,
            Dataset.standard,
            # The schema's stored text: datasets of one standard share it, parsed once.
            cast(Dataset.schema, Text).label("schema"),
            Dataset.created_at,
            Dataset.updated_at,
            Dataset.sector,
            Provider.slug.label("provider_slug"),
            Provider.name.label("provider_name"),
            latest.label("latest"),
            versions.scalar_subquery().label("versions"),
        )
        .join(Provider, Provider.id == Dataset.provider_id)
        .order_by(Dataset.updated_at, Dataset.id)
        .limit(limit + 1)
    )
    if after is not None:
        moment, last = after
        query = query.where(
            or_(
                Dataset.updated_at > moment,
                and_(Dataset.updated_at == moment, Dataset.id > last),
            )
        )
    return list(session.execute(query).all())


def catalog_feed(exchange: Exchange, since: str | None, limit: int = FEED_PAGE) -> dict[str, Any]:
    """A page of the node's catalog feed: at most ``limit`` datasets modified after the
    cursor ``since`` (from the first without one), oldest first."""
    after = _cursor(since)
    if not 0 < limit <= FEED_PAGE:
        raise InvalidInput(
            f"a page of the catalog feed holds 1 to {FEED_PAGE} datasets, not {limit}",
            hint=f"ask for at most {FEED_PAGE}",
        )
    settings = exchange.settings
    base = settings.base_url
    with exchange.node.db.read() as session:
        rows = _page_rows(session, after, limit)
        more = len(rows) > limit
        rows = rows[:limit]
        regions: dict[int, list[str]] = {}
        for dataset_id, code in session.execute(
            select(DatasetRegion.dataset_id, DatasetRegion.code)
            .where(DatasetRegion.dataset_id.in_([r.id for r in rows]))
            .order_by(DatasetRegion.dataset_id, DatasetRegion.position)
        ):
            regions.setdefault(dataset_id, []).append(code)
        present = None
        if not more:
            present = sorted(
                f"{p}/{d}"
                for p, d in session.execute(
                    select(Provider.slug, Dataset.slug).join(
                        Provider, Provider.id == Dataset.provider_id
                    )
                )
            )
    standards: dict[tuple[str, str], Standard] = {}
    terms: dict[str, Term] = {}
    entries = []
    for row in rows:
        key = (row.standard, row.schema)
        if key not in standards:
            standards[key] = parse_standard(json.loads(row.schema), row.standard)
        codes = regions.get(row.id, [])
        for code in codes:
            if code not in terms:
                terms[code] = region(code)
        ref = DatasetRef(row.provider_slug, row.slug)
        summary = DatasetSummary(
            ref=ref,
            title=row.title,
            description=row.description,
            provider=row.provider_name,
            standard=row.standard,
            versions=int(row.versions or 0),
            latest=row.latest,
            rows=None,
            updated_at=as_utc(row.updated_at),
            regions=tuple(terms[code] for code in codes),
            sector=None if row.sector is None else sector(row.sector),
        )
        page = DatasetPage(summary, standards[key], as_utc(row.created_at))
        entry = dataset_entry(base, page, license=settings.license, latest=row.latest)
        entry["entrepot:sqlName"] = ref.sql_name
        entry["entrepot:standard"] = row.standard
        entry["entrepot:regions"] = codes
        entry["entrepot:sector"] = row.sector
        entries.append(entry)
    cursor = _cursor_text(rows[-1].updated_at, rows[-1].id) if rows else since or None
    feed = {
        **catalog_header(base, title="entrepot catalog", license=settings.license),
        "@context": {**CONTEXT, "entrepot": NAMESPACE},
        "entrepot:node": identity_of(exchange.node).to_dict(),
        "entrepot:cursor": cursor,
        "entrepot:more": more,
        "dcat:dataset": entries,
    }
    if present is not None:
        feed["entrepot:present"] = present
    return feed


def _garbage(peer: str, what: str) -> PeerError:
    return PeerError(
        f"peer {peer} sent a catalog feed that is not valid: {what}",
        hint="the peer may run another version of entrepot; ask its operator",
        peer=peer,
        rule="feed_shape",
    )


def _code(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a region or sector code")
    return check_text(value, "region or sector code", most=MAX_CODE)


def _said(value: Any, field: str, most: int, *, multiline: bool = False) -> str:
    """A text of a peer's entry, cut to the ``most`` characters its column keeps, and
    refused if it holds a control or bidirectional character (it is shown in other
    people's terminals and pages; no node's entry points take one)."""
    if not isinstance(value, str):
        raise ValueError(f"its {field} is not text")
    return check_text(value[:most], field, most=most, multiline=multiline)


def _version(value: Any) -> int | None:
    """A version's number as the feed writes it (text of digits), within the column."""
    if value is None:
        return None
    number = int(check_text(value, "version", most=10)) if isinstance(value, str) else value
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= _VERSION_MAX:
        raise ValueError("its dcat:version is not a version number")
    return number


def _scope(entry: dict[str, Any]) -> tuple[list[str], str | None]:
    """The region and sector codes a feed's dataset declares (none from an older peer)."""
    regions = entry.get("entrepot:regions", [])
    if not isinstance(regions, list) or len(regions) > MAX_REGIONS:
        raise ValueError("entrepot:regions")
    sector = entry.get("entrepot:sector")
    return list(dict.fromkeys(_code(r) for r in regions)), None if sector is None else _code(sector)


def _shallow(value: Any, levels: int) -> bool:
    """Whether ``value`` nests lists and objects at most ``levels`` deep."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > levels:
                return False
            inner = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in inner)
    return True


def _row(peer: str, entry: Any) -> dict[str, Any]:
    """A feed's dataset as its copy's row, every field checked before it is stored: a
    dataset reference of slugs, texts cut to their columns and free of control
    characters, a version the column holds, an entry of a bounded size and depth."""
    try:
        identifier = entry["dct:identifier"]
        if not isinstance(identifier, str):
            raise ValueError("its identifier is not text")
        ref = DatasetRef.parse(check_text(identifier, "identifier", most=2 * SLUG_MAX + 1))
        regions, sector = _scope(entry)
        if not _shallow(entry, ENTRY_DEPTH) or len(json.dumps(entry)) > ENTRY_MAX:
            raise ValueError(f"an entry deeper than {ENTRY_DEPTH} or over {ENTRY_MAX} characters")
        return {
            "dataset": str(ref),
            "provider_slug": ref.provider,
            "sector": sector,
            "regions": regions,
            "title": _said(entry["dct:title"], "title", 300),
            "description": _said(
                entry.get("dct:description", ""), "description", TEXT_MAX, multiline=True
            ),
            "provider": _said(entry["dct:publisher"]["foaf:name"], "provider name", NAME_MAX),
            "standard": _said(entry["entrepot:standard"], "standard", 200),
            "latest_version": _version(entry.get("dcat:version")),
            "modified": _said(entry["dct:modified"]["@value"], "modification time", 64),
            # The SQL name follows from the reference: the peer's word for it is not kept.
            "document": {**entry, "entrepot:sqlName": ref.sql_name},
        }
    except KeyError as missing:
        raise _garbage(peer, f"a dataset lacks {missing}") from None
    except InvalidInput as refused:
        raise _garbage(peer, f"a dataset's {refused.message.removeprefix('the ')}") from None
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise _garbage(peer, f"a dataset holds a wrong value ({exc})") from None


def _read_page(name: str, feed: Any) -> tuple[list[dict[str, Any]], str | None, bool, Any]:
    """A page's datasets, cursor, whether another follows, and (last page) the present."""
    if not isinstance(feed, dict):
        raise _garbage(name, "not an object")
    datasets = feed.get("dcat:dataset")
    cursor = feed.get("entrepot:cursor")
    more = feed.get("entrepot:more", False)
    present = feed.get("entrepot:present")
    if not isinstance(datasets, list) or not isinstance(more, bool):
        raise _garbage(name, "no dcat:dataset list or entrepot:more flag")
    if not more and not isinstance(present, list):
        raise _garbage(name, "its last page has no entrepot:present list")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 64):
        raise _garbage(name, "its cursor is not a short string")
    rows = {row["dataset"]: row for row in (_row(name, entry) for entry in datasets)}
    return list(rows.values()), cursor, more, None if more else present


def _store_regions(session: Session, peer_id: int, rows: list[dict[str, Any]]) -> None:
    """Each dataset of a page has its region rows replaced by those its feed declared."""
    if not rows:
        return
    ids = dict(
        session.execute(
            select(RemoteDataset.dataset, RemoteDataset.id).where(
                RemoteDataset.peer_id == peer_id,
                RemoteDataset.dataset.in_([row["dataset"] for row in rows]),
            )
        ).all()
    )
    session.execute(
        delete(RemoteDatasetRegion).where(RemoteDatasetRegion.dataset_id.in_(list(ids.values())))
    )
    codes = [
        {"dataset_id": ids[row["dataset"]], "code": code}
        for row in rows
        if row["dataset"] in ids
        for code in row["regions"]
    ]
    if codes:
        session.execute(insert(RemoteDatasetRegion), codes)


def _store(
    exchange: Exchange,
    peer_id: int,
    rows: list[dict[str, Any]],
    cursor: str | None,
    present: list[Any] | None,
) -> int | None:
    """Write one page to the peer's copy with its cursor, in one transaction; on the
    last page, delete what the peer no longer offers. How many were deleted, or None
    if the peer was removed meanwhile."""
    with exchange.node.db.write() as session:
        if session.scalar(select(Peer.id).where(Peer.id == peer_id)) is None:
            return None
        cached = dict(
            session.execute(
                select(RemoteDataset.dataset, RemoteDataset.id).where(
                    RemoteDataset.peer_id == peer_id,
                    RemoteDataset.dataset.in_([row["dataset"] for row in rows]),
                )
            ).all()
        )
        columns = [{k: v for k, v in r.items() if k != "regions"} for r in rows]
        changed = [{"id": cached[r["dataset"]], **r} for r in columns if r["dataset"] in cached]
        added = [{"peer_id": peer_id, **r} for r in columns if r["dataset"] not in cached]
        # One executemany each, not an ORM object per dataset (10,000 in a sync).
        if changed:
            session.execute(update(RemoteDataset), changed)
        if added:
            session.execute(insert(RemoteDataset), added)
        _store_regions(session, peer_id, rows)
        gone: list[str] = []
        if present is not None:
            kept = {str(ref) for ref in present}
            held = session.scalars(
                select(RemoteDataset.dataset).where(RemoteDataset.peer_id == peer_id)
            )
            gone = [ref for ref in held if ref not in kept]
            for start in range(0, len(gone), _CHUNK):
                session.execute(
                    delete(RemoteDataset).where(
                        RemoteDataset.peer_id == peer_id,
                        RemoteDataset.dataset.in_(gone[start : start + _CHUNK]),
                    )
                )
        session.execute(update(Peer).where(Peer.id == peer_id).values(catalog_cursor=cursor))
    return len(gone)


def sync(exchange: Exchange, name: str, *, page: int = FEED_PAGE) -> dict[str, Any]:
    """Pull ``name``'s feed since the last cursor, ``page`` datasets at a time, and
    update its cached datasets page by page."""
    peers = exchange.peers
    peer = peers.get(name)
    cursor = peer.catalog_cursor
    updated = removed = 0
    try:
        with peers.call(name) as call:
            for _ in range(MAX_PAGES):
                query = {"limit": str(page), **({"since": cursor} if cursor else {})}
                feed = call.call("GET", f"{FEED_PATH}?{urlencode(query)}", idempotent=True)
                rows, moved, more, present = _read_page(name, feed)
                if more and (not rows or moved == cursor):
                    raise _garbage(name, "a page that is not the last did not move its cursor")
                gone = _store(exchange, peer.id, rows, moved, present)
                if gone is None:
                    return {"peer": name, "updated": updated, "removed": removed}
                updated, removed, cursor = updated + len(rows), removed + gone, moved
                if not more:
                    break
            else:
                raise _garbage(name, f"its feed goes on past {MAX_PAGES} pages")
    except EntrepotError as error:
        peers.note(name, f"error: {error.message}")
        raise
    peers.note(name, "ok", synced=True)
    return {"peer": name, "updated": updated, "removed": removed}


def sync_all(exchange: Exchange) -> list[dict[str, Any]]:
    """Pull every peer's feed; a peer that fails is reported, the others still pulled."""
    results: list[dict[str, Any]] = []
    for peer in exchange.peers.list():
        try:
            results.append(sync(exchange, peer["name"]))
        except EntrepotError as error:
            results.append({"peer": peer["name"], "error": error.to_dict()["error"]})
    return results
