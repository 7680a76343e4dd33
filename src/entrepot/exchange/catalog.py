"""The catalog: what datasets a node offers, found by full-text search.

What anyone reads is a function of public metadata: titles, descriptions, provider,
standard, schema with column roles, and each version's number, title and publish
time. Exact figures of a version's content — rows, rejected rows, size in bytes,
the file's SHA-256, completeness and validation counts per rule and column — go to
the dataset's provider and the node's administrators only (:func:`sees_content`);
every other reader gets them absent (``None``), never rounded or zeroed. An exact
count tells two versions one person apart (2,285 rows against 2,284), and the hash
of a deterministic publish can be matched against candidate files rebuilt by a
guesser. Never a value of an individual row, to anyone: the stored validation
reports, which list offending rows, stay with their provider.

A dataset's scope — the regions it covers and its sector — is public metadata its
provider declares at publish, as codes of the shipped code lists
(:mod:`entrepot.standards.scope`); never derived from its rows. Listing and search
take the same :class:`Facets` (provider, standard, region, sector), applied in SQL:
within a facet any of the values given matches, across facets all must.

Search runs on SQLite FTS5 or a PostgreSQL tsvector (migration 0002 keeps both in
sync with ``datasets``); the query text is reduced to plain words first, so any
input — quotes, ``*``, ``NEAR(`` — is searched for, never parsed as syntax.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Connection, Select, bindparam, select, text

from entrepot.clock import as_utc, rfc3339, utcnow
from entrepot.db import Database, count_rows
from entrepot.errors import LimitExceeded, NotFound
from entrepot.standards.scope import Term, region, sector
from entrepot.vault.refs import DatasetRef
from entrepot.vault.tables import dataset_regions, datasets, providers
from entrepot.vault.tables import versions as versions_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from entrepot.exchange.actors import Actor
    from entrepot.exchange.node import Node
    from entrepot.privacy.policy import Policy
    from entrepot.standards.schema import Standard
    from entrepot.vault import Progress, Published, PublishRequest, VersionInfo

__all__ = [
    "CONTENT_FIGURES",
    "Catalog",
    "CatalogVersion",
    "DatasetPage",
    "DatasetSummary",
    "FacetColumns",
    "Facets",
    "publish_version",
    "search_terms",
    "sees_content",
]

# Words of a query that are searched for; more only slows the match down.
MAX_TERMS = 16
# Results of one search unless asked otherwise.
DEFAULT_LIMIT = 20
# FTS5 bm25 weights, in column order (title, description, provider, standard,
# columns): a word in the title says more about a dataset than one in a column note.
_BM25_WEIGHTS = "10.0, 4.0, 3.0, 3.0, 1.0"
_WORD = re.compile(r"[^\W_]+")
# A version's figures that depend on its rows: absent (None) for whoever does not own it.
CONTENT_FIGURES = (
    "sha256",
    "size_bytes",
    "rows",
    "rows_rejected",
    "quality",
    "unit_kept",
    "unit_removed",
    "unit_removed_scale",
)


def sees_content(viewer: Actor | None, provider_id: int) -> bool:
    """Whether ``viewer`` may read exact figures of the content of ``provider_id``'s datasets.

    The provider's own accounts and the node's administrators (operators, and the
    holder of the node's home, who holds the files already) may; consumers, auditors,
    other providers and anonymous readers (``None``) may not.
    """
    if viewer is None:
        return False
    return viewer.administers or viewer.provider_id == provider_id


def search_terms(query: str) -> list[str]:
    """The plain words of ``query``, lowercased, at most :data:`MAX_TERMS`."""
    return _WORD.findall(query.lower())[:MAX_TERMS]


@dataclass(frozen=True)
class DatasetSummary:
    """One line of the catalog."""

    ref: DatasetRef
    title: str
    description: str
    provider: str
    standard: str
    versions: int
    latest: int | None
    rows: int | None  # the newest version's rows, for whoever sees the content; else None
    updated_at: datetime
    score: float | None = None
    regions: tuple[Term, ...] = ()
    sector: Term | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": str(self.ref),
            "sql_name": self.ref.sql_name,
            "title": self.title,
            "description": self.description,
            "provider": self.provider,
            "standard": self.standard,
            "regions": [term.to_dict() for term in self.regions],
            "sector": None if self.sector is None else self.sector.to_dict(),
            "versions": self.versions,
            "latest_version": self.latest,
            "rows": self.rows,
            "updated_at": self.updated_at.isoformat(),
        }
        if self.score is not None:
            out["score"] = round(self.score, 6)
        return out

    def to_body(self) -> dict[str, Any]:
        """The summary as the API's ``DatasetOut`` answers it: :meth:`to_dict` with its
        optional fields null when absent and the time in RFC 3339's ``Z`` form. The local
        client answers with it without building the model (pydantic's model costs the
        listing more than its rows do); tests pin it equal to the model's dump."""
        out = self.to_dict()
        out["updated_at"] = rfc3339(self.updated_at)
        out.setdefault("score", None)
        out["node"] = None
        return out


@dataclass(frozen=True)
class CatalogVersion:
    """A version as one reader sees it: public metadata, and its content figures if owned."""

    ref: DatasetRef
    number: int
    title: str
    standard: str
    standard_version: str
    created_at: datetime
    content: VersionInfo | None = None  # None unless the reader sees the content
    # Released with differential privacy, so public like the policy it serves.
    unit_bound: int | None = None
    unit_level: float | None = None
    bound_epsilon: float = 0.0

    @classmethod
    def of(cls, info: VersionInfo, *, owned: bool) -> CatalogVersion:
        return cls(
            ref=info.ref,
            number=info.number,
            title=info.title,
            standard=info.standard,
            standard_version=info.standard_version,
            created_at=info.created_at,
            content=info if owned else None,
            unit_bound=info.unit_bound,
            unit_level=info.unit_level,
            bound_epsilon=info.bound_epsilon,
        )

    def to_dict(self) -> dict[str, Any]:
        if self.content is not None:
            return self.content.to_dict()
        return {
            "dataset": str(self.ref),
            "version": self.number,
            "title": self.title,
            "standard": self.standard,
            "standard_version": self.standard_version,
            "created_at": self.created_at.isoformat(),
            **dict.fromkeys(CONTENT_FIGURES),
            "unit_bound": self.unit_bound,
            "unit_level": self.unit_level,
            "bound_epsilon": self.bound_epsilon,
        }

    def to_body(self) -> dict[str, Any]:
        """The version as the API's ``VersionOut`` answers it: :meth:`to_dict` in the
        model's order, its time in RFC 3339's ``Z`` form; tests pin it equal to the
        model's dump."""
        out = self.to_dict()
        body = {key: out[key] for key in _VERSION_BODY}
        body["created_at"] = rfc3339(self.created_at)
        body["bound_epsilon"] = float(self.bound_epsilon)
        return body


# The fields of a version's body, in the order of the API's model.
_VERSION_BODY = (
    "dataset",
    "version",
    "title",
    "sha256",
    "size_bytes",
    "rows",
    "rows_rejected",
    "standard",
    "standard_version",
    "created_at",
    "quality",
    "unit_bound",
    "unit_level",
    "bound_epsilon",
    "unit_kept",
    "unit_removed",
    "unit_removed_scale",
)


@dataclass(frozen=True)
class DatasetPage:
    """A dataset's page: schema with roles, standard, versions, and quality if owned."""

    summary: DatasetSummary
    standard: Standard
    created_at: datetime
    versions: list[CatalogVersion] = field(default_factory=list)

    @property
    def quality(self) -> dict[str, Any] | None:
        """The newest version's quality figures, for whoever sees the content; else None."""
        newest = self.versions[-1].content if self.versions else None
        return newest.quality if newest is not None else None

    def schema(self) -> list[dict[str, Any]]:
        """Each column: type, role and the public parts of its constraints."""
        columns = []
        for column in self.standard.fields:
            entry: dict[str, Any] = {
                "name": column.name,
                "type": column.type,
                "role": column.role.value,
                "title": column.title,
                "description": column.description,
                "required": column.required,
                "unique": column.unique,
            }
            for key in ("format", "minimum", "maximum", "pattern", "codelist"):
                if getattr(column, key) is not None:
                    entry[key] = getattr(column, key)
            if column.enum is not None:
                entry["enum"] = list(column.enum)
            if column.bounds is not None:
                entry["bounds"] = list(column.bounds)
            columns.append(entry)
        return columns

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary.to_dict(),
            "created_at": self.created_at.isoformat(),
            "standard": {
                "name": self.standard.name,
                "title": self.standard.title,
                "version": self.standard.version,
                "privacy_unit": self.standard.privacy_unit,
                "primary_key": list(self.standard.primary_key),
            },
            "schema": self.schema(),
            "versions": [v.to_dict() for v in self.versions],
            "quality": self.quality,
        }

    def to_body(self) -> dict[str, Any]:
        """The page as the API's ``DatasetPageOut`` answers it, in the model's order: the
        local client answers with it without building the model (pydantic's models cost
        a dataset's page more than its reads do); tests pin it equal to the model's dump."""
        line = self.summary.to_body()
        out = self.to_dict()
        return {
            **{key: line[key] for key in _LINE_OF_PAGE},
            "versions": [v.to_body() for v in self.versions],
            "latest_version": line["latest_version"],
            "rows": line["rows"],
            "updated_at": line["updated_at"],
            "created_at": rfc3339(self.created_at),
            "standard": out["standard"],
            "schema": out["schema"],
            "quality": out["quality"],
        }


# The fields of a page's body that come first, from its line of the catalog.
_LINE_OF_PAGE = ("dataset", "sql_name", "title", "description", "provider", "regions", "sector")


@dataclass(frozen=True)
class Facets:
    """Which datasets a listing or a search keeps: any of the values of a facet, and
    every facet given (an empty facet keeps all). Providers by slug, standards by name,
    regions and sectors by code; a region matches only its own code, not the places
    inside it."""

    provider: tuple[str, ...] = ()
    standard: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    sector: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        provider: Iterable[str] = (),
        standard: Iterable[str] = (),
        region: Iterable[str] = (),
        sector: Iterable[str] = (),
    ) -> Facets:
        return cls(
            *(tuple(dict.fromkeys(values)) for values in (provider, standard, region, sector))
        )

    def __bool__(self) -> bool:
        return any((self.provider, self.standard, self.region, self.sector))

    def restrict(self, query: Any, columns: FacetColumns | None = None) -> Any:
        """``query`` kept to these facets, over the table ``columns`` describe (by default
        this node's datasets joined to their providers)."""
        on = _DATASETS if columns is None else columns
        if self.provider:
            query = query.where(on.provider.in_(self.provider))
        if self.standard:
            query = query.where(on.standard.in_(self.standard))
        if self.region:
            query = query.where(
                on.id.in_(select(on.region_owner).where(on.region_code.in_(self.region)))
            )
        if self.sector:
            query = query.where(on.sector.in_(self.sector))
        return query

    def ids(self) -> Any:
        """The ids of the datasets these facets keep, as a subquery."""
        return self.restrict(select(datasets.c.id).join(providers, _OWNER))


@dataclass(frozen=True)
class FacetColumns:
    """Where a table of datasets keeps what :class:`Facets` look at: the provider's slug,
    the standard's name, the sector's code, and its regions as a table of (owner, code)
    rows. This node's datasets are one such table, the copies of peers' catalogs another;
    both are filtered by the one rule of :meth:`Facets.restrict`."""

    id: Any
    provider: Any
    standard: Any
    sector: Any
    region_owner: Any
    region_code: Any


_DATASETS = FacetColumns(
    id=datasets.c.id,
    provider=providers.c.slug,
    standard=datasets.c.standard,
    sector=datasets.c.sector,
    region_owner=dataset_regions.c.dataset_id,
    region_code=dataset_regions.c.code,
)

_OWNER = providers.c.id == datasets.c.provider_id

# What a line of the catalog shows of a dataset and its provider, read with Core.
_LISTED = select(
    datasets.c.id,
    datasets.c.provider_id,
    datasets.c.slug,
    datasets.c.title,
    datasets.c.description,
    datasets.c.standard,
    datasets.c.updated_at,
    datasets.c.sector,
    providers.c.slug.label("provider_slug"),
    providers.c.name.label("provider_name"),
).join(providers, _OWNER)

# A dataset's page: its line, with its schema document and when it was created.
_PAGED = _LISTED.add_columns(datasets.c.schema, datasets.c.created_at)

# What a line of the catalog reads of each version, and what a page reads (its public
# description and content figures, not its files' paths nor its validation report).
_LINE_VERSION = (versions_table.c.number, versions_table.c.rows)
_PAGE_VERSION = (
    versions_table.c.number,
    versions_table.c.title,
    versions_table.c.sha256,
    versions_table.c.size_bytes,
    versions_table.c.rows,
    versions_table.c.rows_rejected,
    versions_table.c.standard_version,
    versions_table.c.created_at,
    versions_table.c.quality,
    versions_table.c.unit_bound,
    versions_table.c.unit_level,
    versions_table.c.bound_epsilon_nano,
    versions_table.c.unit_kept,
    versions_table.c.unit_removed,
    versions_table.c.unit_removed_scale,
)

# Datasets whose versions and regions are read in one statement (SQLAlchemy's own
# batch for an IN list of ids).
_BATCH = 500


def _summary(
    listed: Any,
    versions: Sequence[Any],
    regions: Iterable[str],
    viewer: Actor | None,
    score: float | None = None,
) -> DatasetSummary:
    """A line of the catalog from ``listed`` (a row of :data:`_LISTED`), its versions
    (rows with their ``number`` and ``rows``) oldest first and its region codes."""
    latest = versions[-1] if versions else None
    owned = sees_content(viewer, listed.provider_id)
    return DatasetSummary(
        ref=DatasetRef(listed.provider_slug, listed.slug),
        title=listed.title,
        description=listed.description,
        provider=listed.provider_name,
        standard=listed.standard,
        versions=len(versions),
        latest=latest.number if latest else None,
        rows=latest.rows if latest and owned else None,
        updated_at=as_utc(listed.updated_at),
        score=score,
        regions=tuple(region(code) for code in regions),
        sector=None if listed.sector is None else sector(listed.sector),
    )


def _versions_and_regions(
    connection: Connection, ids: Sequence[int], columns: Sequence[Any]
) -> tuple[dict[int, list[Any]], dict[int, list[str]]]:
    """The versions (``columns`` of each, oldest first) and the region codes of the
    datasets ``ids``, by dataset: read in a statement per :data:`_BATCH` datasets."""
    versions: dict[int, list[Any]] = {}
    codes: dict[int, list[str]] = {}
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        for row in connection.execute(
            select(versions_table.c.dataset_id, *columns)
            .where(versions_table.c.dataset_id.in_(batch))
            .order_by(versions_table.c.dataset_id, versions_table.c.number)
        ):
            versions.setdefault(row.dataset_id, []).append(row)
        for owner, code in connection.execute(
            select(dataset_regions.c.dataset_id, dataset_regions.c.code)
            .where(dataset_regions.c.dataset_id.in_(batch))
            .order_by(dataset_regions.c.dataset_id, dataset_regions.c.position)
        ):
            codes.setdefault(owner, []).append(code)
    return versions, codes


def _summaries(
    connection: Connection,
    listed: Sequence[Any],
    viewer: Actor | None,
    scores: Sequence[float | None] | None = None,
) -> list[DatasetSummary]:
    """The catalog's lines of the rows ``listed``, in their order."""
    versions, codes = _versions_and_regions(connection, [row.id for row in listed], _LINE_VERSION)
    return [
        _summary(
            row,
            versions.get(row.id, []),
            codes.get(row.id, []),
            viewer,
            None if scores is None else scores[i],
        )
        for i, row in enumerate(listed)
    ]


def _found(connection: Connection, ref: DatasetRef | str, query: Select[Any] = _LISTED) -> Any:
    """The row of ``query`` (over datasets joined to their providers) of the dataset ``ref``
    names; :class:`NotFound` if there is none."""
    from entrepot.vault.datasets import dataset_not_found

    ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
    row = connection.execute(
        query.where(providers.c.slug == ref.provider, datasets.c.slug == ref.dataset)
    ).first()
    if row is None:
        raise dataset_not_found(ref)
    return row


def _of_provider(query: Select[Any], provider: str | None, facets: Facets) -> Select[Any]:
    """``query``, which selects from datasets joined to their providers, kept to
    ``provider`` (if given) and ``facets``."""
    query = facets.restrict(query)
    return query if provider is None else query.where(providers.c.slug == provider)


def _ts_query(terms: list[str]) -> str:
    """PostgreSQL's tsquery: every term as a prefix."""
    return " & ".join(f"{t}:*" for t in terms)


def _fts_query(terms: list[str]) -> str:
    """SQLite FTS5's query: a double-quoted string is a phrase of plain words; terms hold
    no quotes, so no input can reach the FTS5 query syntax."""
    return " ".join(f'"{t}"*' for t in terms)


def _kept(connection: Connection, facets: Facets) -> list[int] | None:
    """The ids of the datasets ``facets`` keep; None when they keep every dataset."""
    return None if not facets else list(connection.scalars(facets.ids()))


def _among(sql: str, column: str, kept: list[int] | None) -> Any:
    """``sql`` with ``{among}`` made a condition that ``column`` is one of ``kept``
    (bound values; no condition when ``kept`` is None)."""
    if kept is None:
        return text(sql.format(among=""))
    return text(sql.format(among=f" AND {column} IN :kept")).bindparams(
        bindparam("kept", value=kept, expanding=True)
    )


class Catalog:
    """Read the node's catalog as ``viewer`` sees it: list, search, show.

    ``viewer`` decides whether content figures are filled in (:func:`sees_content`);
    the default, ``None``, is anyone: public metadata only.
    """

    def __init__(self, db: Database, *, viewer: Actor | None = None, max_results: int) -> None:
        self.db = db
        self.viewer = viewer
        self.max_results = max_results

    def datasets(
        self,
        *,
        provider: str | None = None,
        facets: Facets = Facets(),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DatasetSummary]:
        """Every dataset (of one provider if given, within ``facets``), by reference: the
        ``limit`` of them from ``offset`` (all when ``limit`` is None)."""
        query = _of_provider(_LISTED, provider, facets).order_by(providers.c.slug, datasets.c.slug)
        with self.db.connect() as connection:
            found = connection.execute(query.limit(limit).offset(offset)).all()
            return _summaries(connection, found, self.viewer)

    def count_datasets(self, *, provider: str | None = None, facets: Facets = Facets()) -> int:
        """How many datasets :meth:`datasets` lists in all."""
        ids = select(datasets.c.id).join(providers, _OWNER)
        with self.db.connect() as connection:
            return count_rows(connection, _of_provider(ids, provider, facets))

    def search(
        self,
        query: str,
        *,
        facets: Facets = Facets(),
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> list[DatasetSummary]:
        """Datasets matching every word of ``query`` (as a prefix) within ``facets``, best
        first: the ``limit`` of them from ``offset``, within the best ``max_results``."""
        terms = search_terms(query)
        if limit > self.max_results:
            raise LimitExceeded(
                f"a search returns at most {self.max_results} datasets, not {limit}",
                setting="catalog_max_results",
                hint="ask for fewer and refine the words, or raise ENTREPOT_CATALOG_MAX_RESULTS",
            )
        limit = min(limit, self.max_results - offset)
        if not terms or limit <= 0:
            return []
        with self.db.connect() as connection:
            kept = _kept(connection, facets)
            if kept is not None and not kept:
                return []
            if connection.dialect.name == "postgresql":
                hits = connection.execute(
                    _among(
                        "SELECT s.dataset_id, ts_rank(s.document, q) AS score "
                        "FROM catalog_search AS s, to_tsquery('english', :q) AS q "
                        "WHERE s.document @@ q{among} ORDER BY score DESC, s.dataset_id "
                        "LIMIT :limit OFFSET :offset",
                        "s.dataset_id",
                        kept,
                    ),
                    {"q": _ts_query(terms), "limit": limit, "offset": offset},
                ).all()
            else:
                hits = connection.execute(
                    _among(
                        f"SELECT rowid, -bm25(catalog_fts, {_BM25_WEIGHTS}) AS score "
                        "FROM catalog_fts WHERE catalog_fts MATCH :q{among} "
                        "ORDER BY score DESC, rowid LIMIT :limit OFFSET :offset",
                        "rowid",
                        kept,
                    ),
                    {"q": _fts_query(terms), "limit": limit, "offset": offset},
                ).all()
            found = {
                row.id: row
                for row in connection.execute(
                    _LISTED.where(datasets.c.id.in_([hit[0] for hit in hits]))
                )
            }
            kept_hits = [hit for hit in hits if hit[0] in found]
            return _summaries(
                connection,
                [found[hit[0]] for hit in kept_hits],
                self.viewer,
                [float(hit[1]) for hit in kept_hits],
            )

    def count_search(self, query: str, *, facets: Facets = Facets()) -> int:
        """How many datasets :meth:`search` pages through: the matches, at most
        ``max_results`` of them."""
        terms = search_terms(query)
        if not terms:
            return 0
        with self.db.connect() as connection:
            kept = _kept(connection, facets)
            if kept is not None and not kept:
                return 0
            if connection.dialect.name == "postgresql":
                counted = connection.scalar(
                    _among(
                        "SELECT count(*) FROM catalog_search AS s, to_tsquery('english', :q) AS q "
                        "WHERE s.document @@ q{among}",
                        "s.dataset_id",
                        kept,
                    ),
                    {"q": _ts_query(terms)},
                )
            else:
                counted = connection.scalar(
                    _among(
                        "SELECT count(*) FROM catalog_fts WHERE catalog_fts MATCH :q{among}",
                        "rowid",
                        kept,
                    ),
                    {"q": _fts_query(terms)},
                )
        return min(int(counted or 0), self.max_results)

    def show(self, ref: DatasetRef | str) -> DatasetPage:
        """The page of one dataset."""
        with self.db.connect() as connection:
            row = _found(connection, ref, _PAGED)
            versions, codes = _versions_and_regions(connection, [row.id], _PAGE_VERSION)
        return self._page(row, versions.get(row.id, []), codes.get(row.id, []))

    def _page(
        self,
        row: Any,
        versions: Sequence[Any],
        regions: Sequence[str],
        standard: Standard | None = None,
    ) -> DatasetPage:
        """The page of the dataset of ``row`` (of :data:`_PAGED`), of its versions (rows of
        :data:`_PAGE_VERSION`) oldest first and its region codes."""
        from entrepot.standards.schema import parse_standard
        from entrepot.vault.datasets import describe_version

        summary = _summary(row, versions, regions, self.viewer)
        owned = sees_content(self.viewer, row.provider_id)
        return DatasetPage(
            summary=summary,
            standard=standard or parse_standard(row.schema, row.standard),
            created_at=as_utc(row.created_at),
            versions=[
                CatalogVersion.of(describe_version(summary.ref, row.standard, v), owned=owned)
                for v in versions
            ],
        )

    def versions(
        self, ref: DatasetRef | str, *, limit: int | None = None, offset: int = 0
    ) -> list[CatalogVersion]:
        """One dataset's versions, oldest first: the ``limit`` of them from ``offset`` (all
        when ``limit`` is None)."""
        from entrepot.vault.datasets import describe_version

        with self.db.connect() as connection:
            row = _found(connection, ref)
            found = connection.execute(
                select(*_PAGE_VERSION)
                .where(versions_table.c.dataset_id == row.id)
                .order_by(versions_table.c.number)
                .limit(limit)
                .offset(offset)
            ).all()
        dataset = DatasetRef(row.provider_slug, row.slug)
        owned = sees_content(self.viewer, row.provider_id)
        return [
            CatalogVersion.of(describe_version(dataset, row.standard, v), owned=owned)
            for v in found
        ]

    def count_versions(self, ref: DatasetRef | str) -> int:
        """How many versions ``ref`` has."""
        with self.db.connect() as connection:
            row = _found(connection, ref)
            ids = select(versions_table.c.id).where(versions_table.c.dataset_id == row.id)
            return count_rows(connection, ids)

    def pages(self) -> list[DatasetPage]:
        """Every dataset's page, by reference (for exports): one read for all of them (a
        read per dataset took 8 s for 500 datasets under load, benchmarks/RESULTS.md)."""
        from entrepot.standards.schema import parse_standard

        with self.db.connect() as connection:
            found = connection.execute(_PAGED.order_by(providers.c.slug, datasets.c.slug)).all()
            versions, codes = _versions_and_regions(
                connection, [row.id for row in found], _PAGE_VERSION
            )
        # Datasets of one standard mostly store one schema: each is parsed once.
        parsed: dict[tuple[str, str], Standard] = {}
        pages = []
        for row in found:
            key = (row.standard, json.dumps(row.schema, sort_keys=True))
            if key not in parsed:
                parsed[key] = parse_standard(row.schema, row.standard)
            pages.append(
                self._page(row, versions.get(row.id, []), codes.get(row.id, []), parsed[key])
            )
        return pages


def publish_version(
    node: Node, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
) -> Published:
    """Publish through the node's vault, then write the new version to the transparency log.

    Once validation has counted the valid rows, and before the version exists, the
    dataset's policy must allow them: a Gaussian δ above 1/(10·N) for the new N
    refuses the publish (rule ``delta_rows``). The check runs here, on the provider's
    side, because N is not public: no consumer's query may be refused because of it.
    In the version's own transaction, the dataset's δ cap comes down to what the new N
    allows (:func:`~entrepot.privacy.policy.dataset_delta_cap`), if that is lower.

    Under a policy whose ``rows_per_unit`` is ``auto``, the written version's rows per
    unit are estimated with differential privacy (:mod:`entrepot.privacy.bounds`) and
    the estimate's ε is taken from the dataset's ε cap in the same transaction: a cap
    with too little left refuses the publish, and nothing is added.

    The log entry is staged in the outbox by the transaction that adds the version
    and appended after it commits (:mod:`entrepot.exchange.outbox`), so the version
    and its entry exist together or not at all; it names the version by its content
    commitment (a keyed hash a rebuilt candidate file cannot confirm), never by a
    figure or a value of its rows.
    """
    # The policy, the ledger and the log's entries load only for a publish, not for
    # reading the catalog.
    from entrepot.exchange.openings import commitment_of
    from entrepot.privacy.bounds import estimate_removed_rows, estimate_rows_per_unit
    from entrepot.privacy.ledger import debit_bound, tighten_delta_cap
    from entrepot.privacy.policy import dataset_delta_cap
    from entrepot.transparency.entries import Kind, actor_name, make_entry
    from entrepot.vault import UnitBound
    from entrepot.vault.datasets import find_dataset

    governing: list[Policy] = []

    def admit(ref: DatasetRef, rows: int) -> None:
        governing.append(_check_delta(node, request, ref, rows))

    def calibrate(histogram: dict[int, int]) -> UnitBound | None:
        policy = governing[-1]
        if policy.rows_per_unit is not None or policy.bound_epsilon <= 0:
            return None
        epsilon = policy.bound_epsilon
        bound = estimate_rows_per_unit(histogram, epsilon)
        removal = estimate_removed_rows(histogram, bound.rows, epsilon)
        return UnitBound(
            bound.rows, 2 * epsilon, bound.level, removal.kept, removal.removed, removal.scale
        )

    admitted = replace(request, admit=admit, calibrate=calibrate)

    def stage(session: Session, version: VersionInfo) -> None:
        if governing:
            dataset_id = find_dataset(session, version.ref).id
            tighten_delta_cap(
                session,
                dataset_id,
                dataset_delta_cap(governing[-1], version.rows),
                actor=request.provider,
                now=utcnow(),
            )
            if version.bound_epsilon > 0:
                debit_bound(
                    session,
                    dataset_id,
                    version.bound_epsilon,
                    default_cap=governing[-1].dataset_epsilon_cap,
                    actor=request.provider,
                    now=utcnow(),
                )
        node.outbox.stage(
            session,
            make_entry(
                Kind.DATASET_VERSION,
                actor_name(version.ref.provider),
                dataset=str(version.ref),
                version=version.number,
                content_commitment=commitment_of(session, version),
                standard=version.standard,
            ),
        )

    from entrepot.vault import LocalVault

    published = LocalVault.of(node).publish(admitted, data, progress=progress, on_commit=stage)
    node.outbox.flush()
    return published


def _check_delta(node: Node, request: PublishRequest, ref: DatasetRef, rows: int) -> Policy:
    """Refuse ``rows`` valid rows if the policy in force on ``ref`` allows too large a δ;
    the policy in force otherwise."""
    from entrepot.exchange.policies import Policies
    from entrepot.privacy.policy import check_delta, default_policy

    try:
        policy = Policies(node).get(ref).policy
    except NotFound:
        # The dataset's first version: the policy its standard's roles imply governs it.
        policy = default_policy(request.standard)
    check_delta(policy, rows, dataset=str(ref))
    return policy
