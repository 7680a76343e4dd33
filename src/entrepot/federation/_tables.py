"""The trusted peers, and a local consumer's contracts on them, as SQLAlchemy Core tables.

Declared apart from the peer's mapped class (:class:`entrepot.federation.models.Peer`,
built on its table) so that listing the peers, and a consumer's contracts on them,
runs on Core, without loading the ORM.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from entrepot.clock import utcnow
from entrepot.db import METADATA

__all__ = ["peers", "remote_grants"]

peers = Table(
    "federation_peers",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", String(2000), nullable=False),
    Column("public_key", String(64), nullable=False, unique=True),
    Column("added_at", DateTime, nullable=False, default=utcnow),
    Column("last_sync_at", DateTime, nullable=True),
    # "ok" after a call that worked, else what went wrong with the last one.
    Column("last_status", String(500), nullable=False, default="never synced"),
    Column("catalog_cursor", String(64), nullable=True),
    # As a witness of the peer's log: the latest checkpoint of it this node cosigned
    # (the peer's signature and this node's cosignature on it), and its size.
    Column("witnessed_size", Integer, nullable=True),
    Column("witnessed_checkpoint", Text, nullable=True),
)

# A local consumer's request or grant on a peer, as the peer last described it.
# Read-only: written only from the peer's signed answers (a request sent, a list read),
# never enforced here; the grant lives and is enforced on the peer.
remote_grants = Table(
    "federation_grants",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "peer_id",
        Integer,
        ForeignKey("federation_peers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("org_slug", String(64), nullable=False, index=True),
    Column("contract", String(64), nullable=False),  # REQ-n or GRANT-n, on the peer
    Column("dataset", String(200), nullable=False),
    Column("state", String(32), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("valid_until", String(32), nullable=False),
    Column("refreshed_at", DateTime, nullable=False, default=utcnow),
    UniqueConstraint("peer_id", "org_slug", "contract"),
)
