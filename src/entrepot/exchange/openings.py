"""Openings: what the node keeps to open the commitments its log and receipts show.

The log names each query, answer and dataset version by a commitment a guess cannot
confirm (:mod:`entrepot.transparency.commitments`). The node keeps what opens them:

- every logged query's text and nonce (answered, repeated, failed or refused), in
  ``query_openings``, written before the entry is appended, so no entry can commit
  to a query the node could not open;
- every version's commitment key, with the version (``versions.commitment_key``).

Who may open what:

- a query commitment: the organization that asked (it has the opening in its receipt
  already), the node's auditors and administrators; never another consumer, nor the
  dataset's provider (a consumer's questions are its business);
- a content commitment: the dataset's provider only (and the holder of the node's
  home), who decides which auditor to show it to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from entrepot.clock import utcnow
from entrepot.db import Base, Database
from entrepot.errors import Forbidden, InvalidInput, NotFound
from entrepot.exchange.accounts import Actor, Role
from entrepot.exchange.node import Node
from entrepot.transparency import ContentOpening, DatasetVersion, QueryOpening, content_commitment
from entrepot.vault import DatasetRef, VersionInfo
from entrepot.vault.models import Dataset, Provider, Version

__all__ = [
    "Openings",
    "QueryOpeningRow",
    "commit_query",
    "commitment_of",
    "committed_version",
]


class QueryOpeningRow(Base):
    """The opening of one logged query commitment, and who asked."""

    __tablename__ = "query_openings"

    commitment: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(32))
    query_text: Mapped[str] = mapped_column(Text)
    consumer_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def commit_query(db: Database, actor: Actor, text: str) -> QueryOpening:
    """A fresh commitment to ``text``, its opening kept: call once for every logged query."""
    opening = QueryOpening.fresh(text)
    with db.write() as session:
        session.add(
            QueryOpeningRow(
                commitment=opening.commitment,
                nonce=opening.nonce,
                query_text=text,
                consumer_id=actor.org_id,
                actor=actor.name,
            )
        )
    return opening


def committed_version(db: Database, version: VersionInfo) -> DatasetVersion:
    """``version`` as receipts and the log name it: by its content commitment."""
    with db.read() as session:
        commitment = commitment_of(session, version)
    return DatasetVersion(str(version.ref), str(version.number), commitment)


def commitment_of(session: Session, version: VersionInfo) -> str:
    """The content commitment of ``version``, read in ``session`` (e.g. the publishing one)."""
    row = _version(session, version.ref, version.number)
    return content_commitment(row.sha256, row.commitment_key)


@dataclass(frozen=True)
class Openings:
    """Reveal openings to those who may see them (see the module's docstring)."""

    node: Node

    def query(self, actor: Actor, index: int) -> QueryOpening:
        """The opening of the query logged as entry ``index``."""
        log = self.node.log
        if not 0 <= index < log.size:
            raise NotFound(f"no log entry {index}", hint=f"the log holds {log.size} entries")
        commitment = _entry_commitment(log.entry_bytes(index))
        if commitment is None:
            raise InvalidInput(
                f"log entry {index} commits to no query",
                hint="find query entries with `entrepot audit log --kind query`",
            )
        with self.node.db.read() as session:
            row = session.get(QueryOpeningRow, commitment)
        if row is None:
            raise NotFound(
                f"this node keeps no opening for log entry {index}",
                hint="the entry was written by a node without openings; ask its consumer",
            )
        asked = row.actor == actor.name or (
            actor.org_id is not None and actor.org_id == row.consumer_id
        )
        if not (asked or actor.administers or actor.role == Role.AUDITOR):
            raise Forbidden(
                f"only the organization that asked entry {index}'s query, an auditor or an "
                "operator may open it",
                hint="ask that organization for the opening in its receipt",
            )
        return QueryOpening(row.query_text, row.nonce)

    def content(self, actor: Actor, dataset: str, version: int) -> ContentOpening:
        """The opening of ``dataset`` version ``version``'s content commitment (its provider)."""
        ref = DatasetRef.parse(dataset)
        with self.node.db.read() as session:
            row = _version(session, ref, version)
            provider_id = row.dataset.provider_id
            opening = ContentOpening(str(ref), str(version), row.sha256, row.commitment_key)
        if not (actor.is_local or actor.provider_id == provider_id):
            raise Forbidden(
                f"only {ref.provider} may open the content commitment of {ref}",
                hint="ask the dataset's provider for the opening",
            )
        return opening


def _version(session: Session, ref: DatasetRef, number: int) -> Version:
    row = session.scalar(
        select(Version)
        .join(Dataset, Dataset.id == Version.dataset_id)
        .join(Provider, Provider.id == Dataset.provider_id)
        .where(Provider.slug == ref.provider, Dataset.slug == ref.dataset, Version.number == number)
    )
    if row is None:
        raise NotFound(
            f"no version {number} of {ref} on this node",
            hint=f"list its versions with `entrepot catalog show {ref}`",
        )
    return row


def _entry_commitment(entry: bytes) -> str | None:
    value = json.loads(entry).get("query_commitment")
    return value if isinstance(value, str) else None
