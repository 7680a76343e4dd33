"""Answers kept under a client's ``Idempotency-Key``, so that a retried publish is one publish.

A client that sends a publish and hears nothing back cannot tell whether the server
committed it; it sends the same request again with the same key. The first request
with a key claims it (a pending row), and its answer is stored when it succeeds; a
repeat with the same key and the same request gets that answer again, never a
second version. A repeat while the first is still running is refused as a conflict
(retry later); the same key with another request (another file, title or option) is
refused, since the key names one request. A refused or failed publish releases its
key: nothing was committed, and the retry runs afresh.

The rows live in node.db, so a server restart keeps them; they are kept for
:data:`KEEP` and a pending claim older than :data:`STALE` (a worker that died
mid-publish) may be taken over by a retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from entrepot.clock import utcnow
from entrepot.db import Base, Database
from entrepot.errors import Conflict

__all__ = ["KEEP", "STALE", "IdempotencyKey", "IdempotencyKeys"]

# How long an answer is kept under its key: a day covers any client's retries (the
# IETF idempotency-key draft leaves the window to the server).
KEEP = timedelta(hours=24)
# A pending claim this old belongs to a worker that died: the largest upload
# (max_upload_bytes, 2 GiB) validates in a few minutes on a 2-core machine.
STALE = timedelta(minutes=15)


class IdempotencyKey(Base):
    """One key of one organization: the request it names and, once done, its answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class IdempotencyKeys:
    """Claim a key, keep the answer under it, or release it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(
        self, owner: str, key: str, fingerprint: str, *, synced: bool = True
    ) -> dict[str, Any] | None:
        """The answer kept under ``key``, or None once this request holds the key.

        Raises :class:`Conflict` when ``key`` names another request, or when the
        request it names is still running. ``synced=False`` for a request whose every
        effect is a synced commit made after the claim, which puts the claim on disk
        first (see :meth:`Database.write`).
        """
        now = utcnow()
        try:
            with self.db.write(synced=synced) as session:
                session.execute(
                    delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP)
                )
                row = session.scalar(
                    select(IdempotencyKey).where(
                        IdempotencyKey.owner == owner, IdempotencyKey.key == key
                    )
                )
                if row is None:
                    session.add(
                        IdempotencyKey(
                            owner=owner, key=key, fingerprint=fingerprint, created_at=now
                        )
                    )
                    return None
                if row.fingerprint != fingerprint:
                    raise Conflict(
                        f"Idempotency-Key {key!r} was first sent with another request "
                        "(another file, title or option)",
                        hint="a key names one request: send a new key for a new publish, "
                        "or the first request unchanged to get its answer",
                        idempotency="reused",
                    )
                if row.answer is not None:
                    answer: dict[str, Any] = json.loads(row.answer)
                    return answer
                if row.created_at > now - STALE:
                    raise _running(key)
                row.created_at = now
                return None
        except IntegrityError:
            # Another request claimed the key between our read and our insert.
            raise _running(key) from None

    def keep(
        self,
        owner: str,
        key: str,
        answer: dict[str, Any],
        *,
        also: Callable[[Session], None] | None = None,
        synced: bool = True,
    ) -> None:
        """Store the answer of the request that holds ``key`` (and run ``also`` in the same
        transaction: one commit for both). ``synced=False`` when a synced commit follows
        soon (see :meth:`Database.write`)."""
        with self.db.write(synced=synced) as session:
            if also is not None:
                also(session)
            row = session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.owner == owner, IdempotencyKey.key == key
                )
            )
            if row is not None:
                row.answer = json.dumps(answer, default=str)

    def release(self, owner: str, key: str) -> None:
        """Forget a claim whose request committed nothing."""
        with self.db.write() as session:
            session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.owner == owner,
                    IdempotencyKey.key == key,
                    IdempotencyKey.answer.is_(None),
                )
            )


def _running(key: str) -> Conflict:
    return Conflict(
        f"a request with Idempotency-Key {key!r} is still running",
        hint="wait for it, then send the same request with the same key to get its answer",
        idempotency="running",
    )
