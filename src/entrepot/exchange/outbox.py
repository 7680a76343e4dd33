"""The log's outbox: every state change and its log entry, recoverable together.

A state change (a published version, a grant, a revocation or expiry, an account
or policy change, the ε an operation spent) writes its log entry into ``log_outbox``
in the transaction that makes the change. After the commit the entry goes to the transparency log::

    commit (change + outbox row) → [outbox-committed]
      → claim: record the log's size in the row → [outbox-claimed]
      → append the entry → [outbox-appended]
      → mark the row done with the entry's index

The bracketed names are fault points (``ENTREPOT_FAULT_POINT``) where a test
SIGKILLs the process. A process killed anywhere after the commit leaves a pending
row; :meth:`Outbox.flush` appends it, oldest first, when the node opens and before
the entry of any later state change. The claimed size tells a row whose entry
reached the log before the kill (the entry at that index is byte for byte the
row's) from one whose entry did not, so no entry is appended twice. Claims, appends
and marks happen under the log's writer lock, so two processes never both append a
row.

``log_state`` is what node.db last saw of the log: its size and root hash, and the
end of its last signed head in ``heads.jsonl``, recorded at every flush and every
head signed. A log shorter than that, with another root at that size, or with
heads missing or altered before that point, was truncated or rewritten; see
:func:`log_state_problems`. The record is only moved forward from a log that is
consistent with it, so the evidence of a truncation stays until someone looks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Mapped, Session

from entrepot.clock import utcnow
from entrepot.db import Base, Database
from entrepot.exchange._outbox_tables import has_pending, log_outbox, log_state
from entrepot.vault._storage import fault

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from entrepot.transparency import Entry, TransparencyLog

__all__ = [
    "LogState",
    "Outbox",
    "OutboxRow",
    "has_pending",
    "log_state_problems",
    "pending_entries",
    "remember_log",
]

# The one row of ``log_state``.
_STATE_ID = 1


class OutboxRow(Base):
    """A log entry owed by a committed state change; done once ``log_index`` is set."""

    __table__ = log_outbox

    id: Mapped[int]
    entry: Mapped[bytes]
    created_at: Mapped[datetime]
    claimed_size: Mapped[int | None]
    log_index: Mapped[int | None]


class LogState(Base):
    """What node.db last saw of the log (one row)."""

    __table__ = log_state

    id: Mapped[int]
    size: Mapped[int]
    root: Mapped[str]
    heads_end: Mapped[int]
    head_sha256: Mapped[str | None]
    updated_at: Mapped[datetime]


@dataclass(frozen=True)
class _Seen:
    size: int
    root: str
    heads_end: int
    head_sha256: str | None


class Outbox:
    """Stage entries with their state change; append them to ``log`` after the commit."""

    def __init__(self, db: Database, log: TransparencyLog, *, fault_point: str | None = None):
        self.db = db
        self.log = log
        self.fault_point = fault_point

    def stage(self, session: Session, entry: Entry) -> OutboxRow:
        """Owe ``entry`` to the log, in the caller's (state change's) transaction; its row."""
        row = OutboxRow(entry=entry.to_bytes(), created_at=utcnow())
        session.add(row)
        return row

    def flush(self) -> list[int]:
        """After a state change's commit: append its entry and any still pending."""
        fault(self.fault_point, "outbox-committed")
        return self.replay()

    def flush_through(self, row: OutboxRow) -> int:
        """After the commit that staged ``row``: append its entry and those pending before
        it, and the entry's log index, whichever process appended it. Rows staged after
        it stay pending, for their owner to append when it chooses."""
        fault(self.fault_point, "outbox-committed")
        self.replay(through=row.id)
        with self.db.read() as session:
            index = session.scalar(select(OutboxRow.log_index).where(OutboxRow.id == row.id))
        # A replay marks every row it reads under the log's lock, ``row`` included once
        # committed; a row that is not was staged in a transaction that was rolled back.
        assert index is not None, f"outbox row {row.id} was never committed"
        return index

    def replay(self, *, through: int | None = None) -> list[int]:
        """Append every pending entry, oldest first, up to row ``through`` if given; the
        log indexes of those appended."""
        if not has_pending(self.db):
            return []
        store = self.log.store
        appended: list[int] = []
        pending: list[ColumnElement[bool]] = [OutboxRow.log_index.is_(None)]
        if through is not None:
            pending.append(OutboxRow.id <= through)
        with store.locked():
            with self.db.read() as session:
                rows = session.execute(
                    select(OutboxRow.id, OutboxRow.entry, OutboxRow.claimed_size)
                    .where(*pending)
                    .order_by(OutboxRow.id)
                ).all()
            for row_id, data, claimed in rows:
                index = _already_logged(self.log, data, claimed)
                if index is None:
                    size, _root = store.snapshot()
                    self._set(row_id, claimed_size=size)
                    fault(self.fault_point, "outbox-claimed")
                    index = self.log.append_encoded([data])
                    appended.append(index)
                    fault(self.fault_point, "outbox-appended")
                self._set(row_id, log_index=index)
            remember_log(self.db, self.log)
        return appended

    def _set(self, row_id: int, **values: int) -> None:
        with self.db.write() as session:
            session.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(**values))


def pending_entries(db: Database) -> list[bytes]:
    """Entries committed state changes still owe the log, oldest first."""
    with db.read() as session:
        return list(
            session.scalars(
                select(OutboxRow.entry).where(OutboxRow.log_index.is_(None)).order_by(OutboxRow.id)
            )
        )


def _already_logged(log: TransparencyLog, data: bytes, claimed: int | None) -> int | None:
    """The index of ``data`` if an append of it was claimed at ``claimed`` and reached the log."""
    if claimed is None or claimed >= log.size:
        return None
    return claimed if log.entry_bytes(claimed) == data else None


def _seen(session: Session) -> _Seen | None:
    row = session.get(LogState, _STATE_ID)
    if row is None:
        return None
    return _Seen(row.size, row.root, row.heads_end, row.head_sha256)


def log_state_problems(db: Database, log: TransparencyLog) -> list[str]:
    """How the log falls short of what node.db last saw of it (empty: it does not)."""
    with db.read() as session:
        seen = _seen(session)
    return [] if seen is None else _problems(seen, log)


def _problems(seen: _Seen, log: TransparencyLog) -> list[str]:
    problems: list[str] = []
    size = log.size
    if size < seen.size:
        problems.append(
            f"the log holds {size} entries, but node.db saw it hold {seen.size}: "
            "entries were removed, or log/ was deleted or replaced"
        )
    elif seen.size and log.root(seen.size).hex() != seen.root:
        problems.append(
            f"the log's first {seen.size} entries hash to another root than node.db saw: "
            "they were altered or replaced"
        )
    heads_end = log.store.heads_end()
    if heads_end < seen.heads_end:
        problems.append(
            f"heads.jsonl holds {heads_end} bytes, but node.db saw {seen.heads_end}: "
            "signed heads were removed"
        )
    elif seen.head_sha256 is not None:
        line = log.store.head_line_before(seen.heads_end)
        if line is None or hashlib.sha256(line).hexdigest() != seen.head_sha256:
            problems.append(
                "the signed head node.db saw last is no longer where it was in heads.jsonl: "
                "a head before it was removed or altered"
            )
    return problems


def remember_log(db: Database, log: TransparencyLog) -> None:
    """Record the log as it is now in node.db, unless it contradicts what was seen before."""
    store = log.store
    with store.locked():
        size, root = store.snapshot()
        heads_end = store.heads_end()
        line = store.head_line_before(heads_end)
        with db.write() as session:
            row = session.get(LogState, _STATE_ID)
            if row is None:
                row = LogState(id=_STATE_ID)
                session.add(row)
            else:
                seen = _Seen(row.size, row.root, row.heads_end, row.head_sha256)
                if _problems(seen, log):
                    return
            row.size = size
            row.root = root.hex()
            row.heads_end = heads_end
            row.head_sha256 = None if line is None else hashlib.sha256(line).hexdigest()
            row.updated_at = utcnow()
