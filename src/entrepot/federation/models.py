"""The tables of federation: trusted peers, nonces seen, and the peers' catalogs.

A peer row exists only because an operator added it with its public key
(``entrepot peer add``); nothing a peer sends can create or change one. The cached
datasets of a peer are a read-only copy of its last verified catalog feed, and a
local consumer's grants on a peer (a Core table of :mod:`entrepot.federation._tables`)
a read-only copy of what the peer last answered, both deleted with the peer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from entrepot.db import Base
from entrepot.federation import _tables

__all__ = ["Nonce", "Peer", "RemoteConsumer", "RemoteDataset", "RemoteDatasetRegion"]


class Peer(Base):
    """A node this one trusts: its name, base URL and Ed25519 public key.

    Mapped on the Core table of :mod:`entrepot.federation._tables`."""

    __table__ = _tables.peers

    id: Mapped[int]
    name: Mapped[str]
    url: Mapped[str]
    public_key: Mapped[str]
    added_at: Mapped[datetime]
    last_sync_at: Mapped[datetime | None]
    last_status: Mapped[str]
    catalog_cursor: Mapped[str | None]
    witnessed_size: Mapped[int | None]
    witnessed_checkpoint: Mapped[str | None]


class Nonce(Base):
    """A signed request's nonce, kept as long as its timestamp would be accepted."""

    __tablename__ = "federation_nonces"

    sender: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class RemoteDataset(Base):
    """One dataset of a peer's catalog, as its last verified feed described it."""

    __tablename__ = "federation_datasets"
    __table_args__ = (UniqueConstraint("peer_id", "dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("federation_peers.id", ondelete="CASCADE"), index=True
    )
    dataset: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str] = mapped_column(String(200))
    standard: Mapped[str] = mapped_column(String(200))
    latest_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    modified: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Its provider's slug, and the sector code its feed declared: the catalog's facets.
    provider_slug: Mapped[str] = mapped_column(String(200), default="")
    sector: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)


class RemoteDatasetRegion(Base):
    """A region code a peer's feed declared for one of its datasets (a facet)."""

    __tablename__ = "federation_dataset_regions"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("federation_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)


class RemoteConsumer(Base):
    """The local organization that holds a peer's consumer's contracts on this node.

    Made on the consumer's first access request, named ``<peer>-<organization>``; a
    local organization of that name that is not in this table is never taken for it.
    """

    __tablename__ = "federation_consumers"
    __table_args__ = (UniqueConstraint("peer_id", "remote_org"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("federation_peers.id", ondelete="CASCADE"), index=True
    )
    remote_org: Mapped[str] = mapped_column(String(64))
    org_slug: Mapped[str] = mapped_column(String(64), unique=True)
