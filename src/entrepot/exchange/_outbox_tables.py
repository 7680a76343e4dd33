"""The outbox's tables as Core tables, and the check a node makes each time it opens.

Apart from :mod:`entrepot.exchange.outbox` (whose mapped classes are built on these
tables) so that opening a node to read it loads no ORM.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, String, Table, select

from entrepot.db import METADATA, Database

__all__ = ["has_pending", "log_outbox", "log_state"]

# A log entry owed by a committed state change; done once ``log_index`` is set.
log_outbox = Table(
    "log_outbox",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("entry", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("claimed_size", BigInteger, nullable=True),
    Column("log_index", BigInteger, nullable=True, index=True),
)

# What node.db last saw of the log (one row).
log_state = Table(
    "log_state",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", String(64), nullable=False),
    Column("heads_end", BigInteger, nullable=False),
    Column("head_sha256", String(64), nullable=True),
    Column("updated_at", DateTime, nullable=False),
)

_PENDING = select(log_outbox.c.id).where(log_outbox.c.log_index.is_(None)).limit(1)


def has_pending(db: Database) -> bool:
    """Whether a committed state change still owes the log its entry (one indexed read)."""
    with db.connect() as connection:
        return connection.scalar(_PENDING) is not None
