"""Answers kept under a client's ``Idempotency-Key``, so that a retried publish is one publish.

A client that sends a publish and hears nothing back cannot tell whether the server
committed it; it sends the same request again with the same key. The first request
with a key claims it (a pending row), and its answer is stored when it succeeds; a
repeat with the same key and the same request gets that answer again, never a
second version. A repeat while the first is still running is refused as a conflict
(retry later); the same key with another request (another file, title or option) is
refused, since the key names one request. A request refused or failed before it could
commit anything releases its key, and the retry runs afresh; one that failed once it
may have committed keeps its key with that failure, and a repeat is refused as
uncertain rather than run a second time.

A claim is a lease that lapses :data:`LEASE` after it was taken or last renewed; a
retry may then take the key over, since the process that held it died. A request
that holds its key through :meth:`IdempotencyKeys.hold` renews the lease every
:data:`RENEW` while it runs, so a live request keeps its key however long it runs, and
checks that the key is still its own before it commits (:meth:`Held.check`): one that
stalled past its lease finds the key taken over and stops.

The rows live in node.db, so a server restart keeps them; they are kept for :data:`KEEP`.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from entrepot.clock import utcnow
from entrepot.db import Base, Database
from entrepot.errors import Conflict, EntrepotError

__all__ = ["KEEP", "LEASE", "RENEW", "Held", "IdempotencyKey", "IdempotencyKeys"]

# How long an answer is kept under its key: a day covers any client's retries (the
# IETF idempotency-key draft leaves the window to the server).
KEEP = timedelta(hours=24)
# A claim not renewed for this long belongs to a process that died. A claim that is
# never renewed (a peer's request) must outlast its request: the largest upload
# (max_upload_bytes, 2 GiB) validates in a few minutes on a 2-core machine.
LEASE = timedelta(minutes=15)
# A held claim is renewed this often: fifteen times a lease, so that it outlasts the
# renewals refused while another writer holds SQLite's lock (up to 30 s each).
RENEW = timedelta(minutes=1)


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
    # The request that holds the pending claim and renews it (None for a claim that is
    # never renewed, and once the request is done), and when the claim lapses.
    holder: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # The error code of a request that failed once it may have committed.
    failed: Mapped[str | None] = mapped_column(String(40))


class IdempotencyKeys:
    """Claim a key, keep the answer under it, or release it."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        renew_every: timedelta = RENEW,
    ) -> None:
        self.db = db
        self.clock = clock
        self.renew_every = renew_every

    def claim(
        self, owner: str, key: str, fingerprint: str, *, synced: bool = True
    ) -> dict[str, Any] | None:
        """The answer kept under ``key``, or None once this request holds the key, for
        :data:`LEASE` (the claim is not renewed).

        Raises :class:`Conflict` when ``key`` names another request, or when the
        request it names is still running or failed once it may have committed.
        ``synced=False`` for a request whose every effect is a synced commit made after
        the claim, which puts the claim on disk first (see :meth:`Database.write`).
        """
        return self._claim(owner, key, fingerprint, None, synced=synced)

    def hold(self, owner: str, key: str, fingerprint: str) -> dict[str, Any] | Held:
        """The answer kept under ``key``, or the key, held by this request until it keeps
        its answer, keeps its failure or releases the key (raises as :meth:`claim`)."""
        holder = secrets.token_hex(16)
        kept = self._claim(owner, key, fingerprint, holder, synced=True)
        return Held(self, owner, key, holder) if kept is None else kept

    def _claim(
        self, owner: str, key: str, fingerprint: str, holder: str | None, *, synced: bool
    ) -> dict[str, Any] | None:
        now = self.clock()
        try:
            with self.db.write(synced=synced) as session:
                session.execute(
                    delete(IdempotencyKey).where(
                        IdempotencyKey.created_at < now - KEEP, IdempotencyKey.expires_at <= now
                    )
                )
                row = session.scalar(
                    select(IdempotencyKey)
                    .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
                    .with_for_update()
                )
                if row is None:
                    session.add(
                        IdempotencyKey(
                            owner=owner,
                            key=key,
                            fingerprint=fingerprint,
                            created_at=now,
                            holder=holder,
                            expires_at=now + LEASE,
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
                if row.failed is not None:
                    raise Conflict(
                        f"the request with Idempotency-Key {key!r} failed ({row.failed}) "
                        "once it may have committed: whether it took effect is unknown",
                        hint="check whether it did (a publish: the dataset's versions); if "
                        "it did not, send the request again with a new key",
                        idempotency="uncertain",
                    )
                if row.expires_at > now:
                    raise _running(key)
                row.holder, row.expires_at, row.created_at = holder, now + LEASE, now
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


class Held:
    """A key one running request holds: its lease renewed while the request runs, then
    its answer or its failure kept under it, or the key released."""

    def __init__(self, keys: IdempotencyKeys, owner: str, key: str, holder: str) -> None:
        self.keys = keys
        self.owner = owner
        self.key = key
        self.holder = holder

    @contextmanager
    def renewed(self) -> Iterator[None]:
        """Renew the lease every ``renew_every`` in a thread of its own while the block runs."""
        stop = threading.Event()
        # A daemon: the lease must lapse with a process that dies, not keep it alive.
        beat = threading.Thread(
            target=self._beat, args=(stop,), name="idempotency-lease", daemon=True
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.keys.renew_every.total_seconds()):
            try:
                if not self.renew():
                    return
            except (EntrepotError, SQLAlchemyError):
                # A renewal the database refused (locked, unreachable): the lease outlasts
                # many, and check() tells the request before it commits if it lapsed.
                continue

    def renew(self) -> bool:
        """Extend the lease to :data:`LEASE` from now; False once the key is no longer
        this request's (a retry took it over after the lease lapsed)."""
        with self.keys.db.write() as session:
            row = self._row(session)
            if row is None:
                return False
            row.expires_at = self.keys.clock() + LEASE
            return True

    def check(self) -> None:
        """Renew the lease, or raise :class:`Conflict` if a retry took the key over: the
        retry runs the request, so this one must not commit it."""
        if not self.renew():
            raise Conflict(
                f"a retry took Idempotency-Key {self.key!r} over while this request still "
                "ran: the request had not renewed its claim within its lease",
                hint="the retry runs it: send the same request with the same key to get its answer",
                idempotency="running",
            )

    def keep(self, answer: dict[str, Any]) -> None:
        """Store the request's answer under the key, for its repeats."""
        with self.keys.db.write() as session:
            row = self._row(session)
            if row is not None:
                row.answer, row.holder = json.dumps(answer, default=str), None

    def fail(self, code: str) -> None:
        """Store the error ``code`` of a request that failed once it may have committed: a
        repeat is refused rather than run a second time."""
        with self.keys.db.write() as session:
            row = self._row(session)
            if row is not None:
                row.failed, row.holder = code, None

    def release(self) -> None:
        """Forget the claim of a request that committed nothing."""
        with self.keys.db.write() as session:
            row = self._row(session)
            if row is not None:
                session.delete(row)

    def _row(self, session: Session) -> IdempotencyKey | None:
        """The claim, locked, while this request holds it (never once it is done)."""
        return session.scalar(
            select(IdempotencyKey)
            .where(
                IdempotencyKey.owner == self.owner,
                IdempotencyKey.key == self.key,
                IdempotencyKey.holder == self.holder,
            )
            .with_for_update()
        )


def _running(key: str) -> Conflict:
    return Conflict(
        f"a request with Idempotency-Key {key!r} is still running",
        hint="wait for it, then send the same request with the same key to get its answer",
        idempotency="running",
    )
