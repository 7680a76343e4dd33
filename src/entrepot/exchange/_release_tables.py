"""Releases as a SQLAlchemy Core table, the view of a release, and the listing read on it.

Declared apart from the release service (:mod:`entrepot.exchange.release`, which makes
releases through the coordinator) so that listing releases runs on Core, without
loading the coordinator, DuckDB, the query path or the ORM. The service lists through
the same function.

A release is bound to the grant it was made under (``grant_id``): its consumer sees it
only while that very grant is in force, never through a later grant of the same
consumer on the dataset. The reason given for a revocation is kept here, for the
release's provider and the node's operators, and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    select,
)

from entrepot.clock import utcnow
from entrepot.db import METADATA, Database
from entrepot.exchange._contract_tables import grants
from entrepot.exchange._parties import named, visible_to
from entrepot.vault.tables import datasets

if TYPE_CHECKING:
    from sqlalchemy import Row

    from entrepot.exchange.actors import Actor

__all__ = ["ACTIVE", "REVOKED", "ReleaseInfo", "ReleaseRecord", "list_releases", "releases"]

ACTIVE, REVOKED = "active", "revoked"
# Figures of the report that describe the data before release: its provider's only.
# The information loss counts the suppressed rows (its discernibility and each column's
# loss tell how many, and so the rows in); the search's figures and each column's loss
# and levels depend on the rows before suppression.
_PROVIDER_ONLY = ("rows_in", "rows_suppressed", "drivers", "fidelity", "information_loss", "search")
# What a consumer sees of a column's generalization: what its labels in the rows are.
_GENERALIZATION_SEEN = ("column", "generalized_to")

releases = Table(
    "releases",
    METADATA,
    Column("id", Integer, primary_key=True),
    # The file's name in the vault: random, so that it says nothing and cannot be guessed.
    Column("name", String(64), nullable=False, unique=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("consumer_id", Integer, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("state", String(20), nullable=False),  # active, revoked
    Column("spec", JSON, nullable=False),
    Column("report", JSON, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("log_index", Integer),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_by", String(200)),
    Column("revoked_at", DateTime),
    # The grant it was made under: NULL only for a release made before migration 0023
    # that no grant was made before, which no consumer reads.
    Column("grant_id", Integer, ForeignKey("grants.id")),
    # Why it was revoked: its provider's and the operators', never logged.
    Column("revoked_reason", Text),
)


@dataclass(frozen=True)
class ReleaseRecord:
    """One row of :data:`releases`: what was made, for whom, from which version."""

    id: int
    name: str
    dataset_id: int
    version: int
    consumer_id: int
    kind: str
    state: str
    spec: dict[str, Any]
    report: dict[str, Any]
    rows: int
    size_bytes: int
    sha256: str
    epsilon: float
    log_index: int | None
    created_by: str
    created_at: datetime
    revoked_by: str | None
    revoked_at: datetime | None
    grant_id: int | None
    revoked_reason: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> ReleaseRecord:
        """The record of a row that selects every column of :data:`releases`."""
        return cls(**{column.name: row._mapping[column] for column in releases.columns})


@dataclass(frozen=True)
class ReleaseInfo:
    """A release as its provider (``full``) or its consumer sees it."""

    record: ReleaseRecord
    dataset: str
    consumer: str
    full: bool
    receipt: dict[str, Any] | None = None  # when just made: the signed receipt of its entry

    @property
    def ident(self) -> str:
        return f"R-{self.record.id}"

    @property
    def share(self) -> dict[str, str]:
        provider, dataset = self.dataset.split("/")
        return {
            "share": provider,
            "schema": dataset,
            "table": f"{self.record.kind}-{self.record.id}",
        }

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        report = dict(r.report)
        if not self.full:
            for key in _PROVIDER_ONLY:
                report.pop(key, None)
            if "generalization" in report:
                report["generalization"] = [
                    {key: column[key] for key in _GENERALIZATION_SEEN}
                    for column in report["generalization"]
                ]
        return {
            "release": self.ident,
            "dataset": self.dataset,
            "version": r.version,
            "consumer": self.consumer,
            "kind": r.kind,
            "state": r.state,
            "spec": r.spec,
            "rows": r.rows,
            "size_bytes": r.size_bytes,
            "sha256": r.sha256,
            "epsilon": r.epsilon,
            "log_index": r.log_index,
            "created_by": r.created_by,
            "created_at": r.created_at.isoformat(),
            "revoked_by": r.revoked_by,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
            "revoked_reason": r.revoked_reason if self.full else None,
            "grant": f"GRANT-{r.grant_id}" if r.grant_id is not None else None,
            "share": self.share,
            "report": report,
            "receipt": self.receipt,
        }

    def to_body(self) -> dict[str, Any]:
        """The release as the API's ``ReleaseOut`` answers it, which :meth:`to_dict` is
        already. The local client answers with it without building the model; tests pin
        it equal to the model's dump."""
        return self.to_dict()


def list_releases(
    db: Database, actor: Actor, *, state: str | None = None, now: datetime | None = None
) -> list[ReleaseInfo]:
    """Releases the actor may see, oldest first: a provider's of its datasets, a
    consumer's made for it under its grant in force (``now``, by default the node's
    clock), all for administrators (``state``: only those in it)."""
    query = (
        named(select(releases, datasets.c.provider_id), releases)
        .add_columns(
            grants.c.state.label("grant_state"),
            grants.c.valid_from.label("grant_from"),
            grants.c.valid_until.label("grant_until"),
        )
        .outerjoin(grants, grants.c.id == releases.c.grant_id)
        .order_by(releases.c.id)
    )
    if state is not None:
        query = query.where(releases.c.state == state)
    query = visible_to(query, releases, actor)
    with db.connect() as connection:
        rows = connection.execute(query).all()
    at = now or utcnow()
    found = []
    for row in rows:
        full = actor.administers or row.provider_id == actor.provider_id
        if full or _in_force(row, at):
            found.append(
                ReleaseInfo(
                    ReleaseRecord.of(row), f"{row.provider}/{row.dataset}", row.consumer, full
                )
            )
    return found


def _in_force(row: Row[Any], now: datetime) -> bool:
    """Whether the grant a release was made under is in force at ``now``: granted, not
    revoked or expired, and within its period. A release bound to no grant is not."""
    return row.grant_state == "granted" and row.grant_from <= now < row.grant_until
