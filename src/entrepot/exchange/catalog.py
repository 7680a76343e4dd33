"""The catalog: what datasets a node offers, found by full-text search.

Everything here is public: titles, descriptions, schemas with column roles,
versions with row counts and content hashes, and quality figures (completeness per
column, counts of the validation). Never a value of an individual row: the stored
validation reports, which list offending rows, stay with their provider.

Search runs on SQLite FTS5 or a PostgreSQL tsvector (migration 0002 keeps both in
sync with ``datasets``); the query text is reduced to plain words first, so any
input — quotes, ``*``, ``NEAR(`` — is searched for, never parsed as syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from entrepot.db import Database
from entrepot.errors import LimitExceeded, NotFound
from entrepot.exchange.node import Node
from entrepot.standards.schema import Standard, parse_standard
from entrepot.transparency.entries import Kind, make_entry
from entrepot.vault import DatasetRef, LocalVault, Progress, Published, PublishRequest, VersionInfo
from entrepot.vault.local import version_info
from entrepot.vault.models import Dataset, Provider, as_utc

__all__ = ["Catalog", "DatasetPage", "DatasetSummary", "publish_version", "search_terms"]

# Words of a query that are searched for; more only slows the match down.
MAX_TERMS = 16
# Results of one search unless asked otherwise.
DEFAULT_LIMIT = 20
# FTS5 bm25 weights, in column order (title, description, provider, standard,
# columns): a word in the title says more about a dataset than one in a column note.
_BM25_WEIGHTS = "10.0, 4.0, 3.0, 3.0, 1.0"
_WORD = re.compile(r"[^\W_]+")


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
    rows: int | None
    updated_at: datetime
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": str(self.ref),
            "sql_name": self.ref.sql_name,
            "title": self.title,
            "description": self.description,
            "provider": self.provider,
            "standard": self.standard,
            "versions": self.versions,
            "latest_version": self.latest,
            "rows": self.rows,
            "updated_at": self.updated_at.isoformat(),
        }
        if self.score is not None:
            out["score"] = round(self.score, 6)
        return out


@dataclass(frozen=True)
class DatasetPage:
    """A dataset's public page: schema with roles, standard, versions, quality."""

    summary: DatasetSummary
    standard: Standard
    created_at: datetime
    versions: list[VersionInfo] = field(default_factory=list)

    @property
    def quality(self) -> dict[str, Any]:
        return self.versions[-1].quality if self.versions else {}

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


def _summary(dataset: Dataset, score: float | None = None) -> DatasetSummary:
    latest = dataset.versions[-1] if dataset.versions else None
    return DatasetSummary(
        ref=DatasetRef(dataset.provider.slug, dataset.slug),
        title=dataset.title,
        description=dataset.description,
        provider=dataset.provider.name,
        standard=dataset.standard,
        versions=len(dataset.versions),
        latest=latest.number if latest else None,
        rows=latest.rows if latest else None,
        updated_at=as_utc(dataset.updated_at),
        score=score,
    )


def _load(session: Session, ids: list[int]) -> dict[int, Dataset]:
    rows = session.scalars(
        select(Dataset)
        .where(Dataset.id.in_(ids))
        .options(selectinload(Dataset.provider), selectinload(Dataset.versions))
    ).all()
    return {d.id: d for d in rows}


class Catalog:
    """Read the node's catalog: list, search, show."""

    def __init__(self, db: Database, *, max_results: int = 200) -> None:
        self.db = db
        self.max_results = max_results

    def datasets(self, *, provider: str | None = None) -> list[DatasetSummary]:
        """Every dataset (of one provider if given), by reference."""
        query = (
            select(Dataset)
            .join(Provider)
            .options(selectinload(Dataset.provider), selectinload(Dataset.versions))
            .order_by(Provider.slug, Dataset.slug)
        )
        if provider is not None:
            query = query.where(Provider.slug == provider)
        with self.db.read() as session:
            return [_summary(d) for d in session.scalars(query).all()]

    def search(self, query: str, *, limit: int = DEFAULT_LIMIT) -> list[DatasetSummary]:
        """Datasets matching every word of ``query`` (as a prefix), best first."""
        terms = search_terms(query)
        if not terms or limit <= 0:
            return []
        if limit > self.max_results:
            raise LimitExceeded(
                f"a search returns at most {self.max_results} datasets, not {limit}",
                setting="catalog_max_results",
                hint="ask for fewer and refine the words, or raise ENTREPOT_CATALOG_MAX_RESULTS",
            )
        with self.db.read() as session:
            if session.get_bind().dialect.name == "postgresql":
                hits = session.execute(
                    text(
                        "SELECT s.dataset_id, ts_rank(s.document, q) AS score "
                        "FROM catalog_search AS s, to_tsquery('english', :q) AS q "
                        "WHERE s.document @@ q ORDER BY score DESC, s.dataset_id LIMIT :limit"
                    ),
                    {"q": " & ".join(f"{t}:*" for t in terms), "limit": limit},
                ).all()
            else:
                # A double-quoted FTS5 string is a phrase of plain words; terms hold no
                # quotes, so no input can reach the FTS5 query syntax.
                hits = session.execute(
                    text(
                        f"SELECT rowid, -bm25(catalog_fts, {_BM25_WEIGHTS}) AS score "
                        "FROM catalog_fts WHERE catalog_fts MATCH :q "
                        "ORDER BY score DESC, rowid LIMIT :limit"
                    ),
                    {"q": " ".join(f'"{t}"*' for t in terms), "limit": limit},
                ).all()
            datasets = _load(session, [row[0] for row in hits])
            return [_summary(datasets[row[0]], float(row[1])) for row in hits if row[0] in datasets]

    def show(self, ref: DatasetRef | str) -> DatasetPage:
        """The public page of one dataset."""
        ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
        with self.db.read() as session:
            dataset = session.scalar(
                select(Dataset)
                .join(Provider)
                .where(Provider.slug == ref.provider, Dataset.slug == ref.dataset)
                .options(selectinload(Dataset.provider), selectinload(Dataset.versions))
            )
            if dataset is None:
                raise NotFound(
                    f"no dataset {ref} in the catalog",
                    hint='find datasets with `entrepot catalog search "..."` or '
                    "`entrepot catalog list`",
                )
            return DatasetPage(
                summary=_summary(dataset),
                standard=parse_standard(dataset.schema, dataset.standard),
                created_at=as_utc(dataset.created_at),
                versions=[version_info(dataset, v) for v in dataset.versions],
            )

    def pages(self) -> list[DatasetPage]:
        """Every dataset's page, by reference (for exports)."""
        return [self.show(summary.ref) for summary in self.datasets()]


def publish_version(
    node: Node, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
) -> Published:
    """Publish through the node's vault, then write the new version to the transparency log.

    The log entry follows the commit, so it only ever states a version that exists;
    it names the version by content hash and counts, never by a value of a row.
    """
    published = LocalVault.of(node).publish(request, data, progress=progress)
    version = published.version
    node.log.append(
        make_entry(
            Kind.DATASET_VERSION,
            version.ref.provider,
            dataset=str(version.ref),
            version=version.number,
            sha256=version.sha256,
            rows=version.rows,
            rows_rejected=version.rows_rejected,
            standard=version.standard,
        )
    )
    return published
