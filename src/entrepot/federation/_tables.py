"""The trusted peers as a SQLAlchemy Core table.

Declared apart from its mapped class (:class:`entrepot.federation.models.Peer`, built
on this table) so that listing the peers runs on Core, without loading the ORM.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table, Text

from entrepot.clock import utcnow
from entrepot.db import METADATA

__all__ = ["peers"]

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
