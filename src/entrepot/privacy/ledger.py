"""The privacy budget ledger: ε per (consumer, dataset), ε and δ per dataset, every spend a row.

A query is priced from its text before any data is touched, then :meth:`Ledger.reserve`
debits, in ONE write transaction, both the consumer's budget (from its grant) and the
dataset's global cap (across all consumers, so pooled or fake accounts cannot exceed it),
counts one use against the grant's maximum, and writes the ledger row. A use that reads
several datasets (a join) takes one such debit per dataset, all in that one transaction:
every debit or none. Each debit is a single conditional
``UPDATE ... WHERE remaining >= :cost`` whose row count is checked, backed by
``CHECK (remaining >= 0)``: checking in one statement and debiting in another let 51-61
of 64 racing 0.1-ε queries through a 1.0 budget; this way exactly 10 pass.

A reservation moves ``reserved → touched → completed`` or ``reserved → released``. Only
a reservation that never touched data can be released (refunded): a refund that depends
on what the data did is a side channel. ``completed`` rows are what metering bills. A
use is reserved just before its data is read (a partner of a join holds its part at
most ten minutes): a reservation still untouched after :data:`STALE_RESERVATION`
belongs to a process that died before reading, and is released at its consumer's next
reservation. Should its process live on after all, its mark as touched fails, before
it reads anything.

ε is stored as an integer count of nano-ε. Floats drift (ten debits of 0.1 from 1.0 leave
a tiny negative or positive remainder, which would turn the tenth query away or let an
eleventh through); integers do not. Costs round up and budgets round down, so rounding
never grants ε.

δ is capped per dataset the same way: the cap holds the total δ all consumers together
may spend, as an integer count of atto-δ (10^-18), taken in the same conditional UPDATE
as the cap's ε (both or neither) and given back by :meth:`Ledger.release`. Gaussian
queries spend δ; a grant's budget counts ε only, as δ is the dataset's risk, not the
consumer's allowance. The δ cap comes with the dataset's policy (``delta_cap``, by
default 1/(10·N) for the latest version's N rows, see
:func:`entrepot.privacy.policy.dataset_delta_cap`) and tightens when a larger version
is published (:func:`tighten_delta_cap`); like ε's, it never goes below what was spent.
A publish that estimates its version's rows per unit privately takes that estimate's
ε from the dataset's ε cap in the version's own transaction (:func:`debit_bound`);
the version row keeps it, and :meth:`Ledger.check` counts it with the ledger rows.

The ledger lives in the metadata DB, never in DuckDB (one writer process, not built for
many small transactions). Tables here reference ``organizations``, ``grants`` and
``datasets`` by name only, so this module depends on nothing else of ours but the DB.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, case, column, func, insert, or_, select, table, update
from sqlalchemy.exc import OperationalError

from entrepot._lazy import lazy
from entrepot.clock import utcnow
from entrepot.db import Database, count_rows
from entrepot.errors import (
    BudgetExhausted,
    Conflict,
    ContractViolation,
    InvalidInput,
    NotFound,
    param,
)
from entrepot.privacy._ledger_tables import (
    ATTO,
    COMPLETED,
    NANO,
    RELEASED,
    RESERVED,
    SPENT_STATES,
    TOUCHED,
    BudgetRecord,
    Cap,
    Debit,
    Entry,
    Held,
    Reservation,
    budgets,
    cap_view,
    close_budget,
    dataset_caps,
    ensure_cap,
    entry_view,
    from_atto,
    from_nano,
    insert_ignore,
    ledger_entries,
    open_budget,
    price_cents,
    stored_answers,
    to_atto,
    to_nano,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from entrepot.privacy._ledger_models import Budget, DatasetCap, LedgerEntry, StoredAnswer

__all__ = [
    "ATTO",
    "COMPLETED",
    "NANO",
    "STALE_RESERVATION",
    "Budget",
    "BudgetRecord",
    "Cap",
    "DatasetCap",
    "Debit",
    "Entry",
    "Held",
    "Ledger",
    "LedgerEntry",
    "Reservation",
    "StoredAnswer",
    "close_budget",
    "debit_bound",
    "from_atto",
    "from_nano",
    "open_budget",
    "price_cents",
    "tighten_delta_cap",
    "to_atto",
    "to_nano",
    "write_cap",
]

# Versions, by name only: their rows-per-unit estimates spend ε of their dataset's cap.
_versions = table("versions", column("dataset_id"), column("bound_epsilon_nano"))
# PostgreSQL SQLSTATEs worth retrying: serialization failure and deadlock detected.
_RETRY_SQLSTATES = ("40001", "40P01")
_RETRIES = 5
# How long a reservation may stay untouched before it is taken for a dead process's.
STALE_RESERVATION = timedelta(hours=1)

_T = TypeVar("_T")

# The mapped classes load with the ORM, for the modules that join them to their own;
# the ledger reads and writes their tables with Core.
__getattr__ = lazy(
    __name__,
    dict.fromkeys(
        ("Budget", "DatasetCap", "LedgerEntry", "StoredAnswer"), "entrepot.privacy._ledger_models"
    ),
)


class Ledger:
    """Reservations against budgets and caps; one instance per node is enough."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    # -- spending -----------------------------------------------------------------

    def reserve(
        self,
        consumer_id: int,
        dataset_id: int,
        version: int,
        query_text: str,
        epsilon: float,
        delta: float = 0.0,
        *,
        also: Sequence[Debit] = (),
        action: str = "aggregate-query",
        actor: str = "",
    ) -> Reservation:
        """Hold ``epsilon`` against the grant's budget, and ``epsilon`` and ``delta``
        against the dataset's caps, atomically.

        ``also`` names further datasets the same use reads (a join): each is one more
        debit of its grant's budget and its cap, taken in the same transaction, so the
        use holds every debit or none.

        Raises :class:`BudgetExhausted` (``budget="grant"`` or ``"dataset"``) when any
        budget or cap (ε or δ) has too little left, and :class:`ContractViolation` when a dataset
        has no open grant, it is outside its period, or its use count is exhausted.
        Nothing is debited then, on any dataset.
        """
        debits = (Debit(dataset_id, version, epsilon, delta), *also)
        if len({d.dataset_id for d in debits}) != len(debits):
            raise InvalidInput(
                "a reservation names the same dataset twice",
                hint="one debit per dataset: add up the ε of its parts",
            )
        for debit in debits:
            if not (math.isfinite(debit.delta) and 0 <= debit.delta < 1):
                raise InvalidInput(
                    f"δ must be in [0, 1), got {debit.delta!r}",
                    hint="δ is a probability; use 0 for pure ε-DP",
                )
        digest = hashlib.sha256(query_text.encode()).hexdigest()
        # Budgets first, then caps, each in dataset order, in every transaction: two
        # reservations over the same datasets take their row locks in the same order, so
        # PostgreSQL never deadlocks.
        ordered = sorted(debits, key=lambda d: d.dataset_id)
        self._release_stale(consumer_id)

        def attempt(session: Session) -> Reservation:
            now = self.clock()
            budgets = [self._debit_budget(session, consumer_id, d, now) for d in ordered]
            for debit in ordered:
                self._debit_cap(session, debit)
            held = [
                self._write_entry(
                    session, consumer_id, d, b, query_text, digest, action, actor, now
                )
                for d, b in zip(ordered, budgets, strict=True)
            ]
            by_dataset = {h.dataset_id: h for h in held}
            return Reservation(consumer_id, action, tuple(by_dataset[d.dataset_id] for d in debits))

        return self._retrying(attempt)

    def _debit_budget(
        self, session: Session, consumer_id: int, debit: Debit, now: datetime
    ) -> tuple[int, int, int]:
        """Take ``debit`` from the consumer's open budget: (budget id, its two prices)."""
        cost = to_nano(debit.epsilon)
        row = session.execute(
            update(budgets)
            .where(
                budgets.c.consumer_id == consumer_id,
                budgets.c.dataset_id == debit.dataset_id,
                budgets.c.state == "open",
                budgets.c.valid_from <= now,
                budgets.c.valid_until > now,
                budgets.c.epsilon_remaining_nano >= cost,
                or_(budgets.c.queries_remaining.is_(None), budgets.c.queries_remaining >= 1),
            )
            .values(
                epsilon_remaining_nano=budgets.c.epsilon_remaining_nano - cost,
                queries_remaining=budgets.c.queries_remaining - 1,
            )
            .returning(
                budgets.c.id, budgets.c.price_per_query_cents, budgets.c.price_per_epsilon_cents
            )
        ).first()
        if row is None:
            self._refuse(session, consumer_id, debit.dataset_id, cost, now)
        budget_id, per_query, per_epsilon = row  # type: ignore[misc]
        return budget_id, per_query, per_epsilon

    def _debit_cap(self, session: Session, debit: Debit) -> None:
        cost, risk = to_nano(debit.epsilon), to_atto(debit.delta)
        caps = dataset_caps
        capped = session.execute(
            update(caps)
            .where(
                caps.c.dataset_id == debit.dataset_id,
                caps.c.remaining_nano >= cost,
                caps.c.delta_remaining_atto >= risk,
            )
            .values(
                remaining_nano=caps.c.remaining_nano - cost,
                delta_remaining_atto=caps.c.delta_remaining_atto - risk,
            )
            .returning(caps.c.remaining_nano)
        ).first()
        if capped is not None:
            return
        row = _cap_row(session, debit.dataset_id)
        if row is None or row.remaining_nano < cost:
            left = 0 if row is None else row.remaining_nano
            raise BudgetExhausted(
                f"the dataset's global ε cap has {from_nano(left):g} ε left across all "
                f"consumers; this use needs {from_nano(cost):g} ε",
                budget="dataset",
                hint="the cap protects the dataset from pooled budgets; only its provider "
                "can raise it (`entrepot budget set-cap`)",
                dataset_id=debit.dataset_id,
                resource="epsilon",
            )
        raise BudgetExhausted(
            f"the dataset's global δ cap has {from_atto(row.delta_remaining_atto):.3g} δ left "
            f"across all consumers; this use needs {from_atto(risk):.3g} δ",
            budget="dataset",
            hint="the δ cap bounds the total chance that a guarantee fails on this dataset; "
            "only its provider can raise it (`delta_cap` in the dataset's policy)",
            dataset_id=debit.dataset_id,
            resource="delta",
        )

    @staticmethod
    def _write_entry(
        session: Session,
        consumer_id: int,
        debit: Debit,
        budget: tuple[int, int, int],
        query_text: str,
        digest: str,
        action: str,
        actor: str,
        now: datetime,
    ) -> Held:
        cost = to_nano(debit.epsilon)
        budget_id, per_query, per_epsilon = budget
        price = price_cents(cost, per_query, per_epsilon)
        entry_id = session.execute(
            insert(ledger_entries)
            .values(
                budget_id=budget_id,
                consumer_id=consumer_id,
                dataset_id=debit.dataset_id,
                version=debit.version,
                action=action,
                query_text=query_text,
                query_sha256=digest,
                epsilon_nano=cost,
                delta=debit.delta,
                price_cents=price,
                state=RESERVED,
                actor=actor,
                created_at=now,
            )
            .returning(ledger_entries.c.id)
        ).scalar_one()
        return Held(
            entry_id=entry_id,
            budget_id=budget_id,
            dataset_id=debit.dataset_id,
            version=debit.version,
            epsilon=from_nano(cost),
            delta=debit.delta,
            price_cents=price,
        )

    def _refuse(
        self, session: Session, consumer_id: int, dataset_id: int, cost: int, now: datetime
    ) -> None:
        """Say which clause refused a debit that matched no budget row; always raises."""
        rows = session.execute(
            select(budgets)
            .where(budgets.c.consumer_id == consumer_id, budgets.c.dataset_id == dataset_id)
            .order_by(budgets.c.id.desc())
        ).all()
        current = next((r for r in rows if r.state == "open"), rows[0] if rows else None)
        ask = "request access with `entrepot access request`"
        if current is None:
            raise ContractViolation(
                "no grant covers this dataset for this consumer",
                clause="grant",
                hint=ask,
                dataset_id=dataset_id,
            )
        if current.state == "revoked":
            raise ContractViolation(
                f"grant GRANT-{current.grant_id} was revoked by the provider",
                clause="revoked",
                hint=ask,
                grant_id=current.grant_id,
            )
        if current.state != "open" or not current.valid_from <= now < current.valid_until:
            raise ContractViolation(
                f"grant GRANT-{current.grant_id} is valid from {current.valid_from:%Y-%m-%d} "
                f"until {current.valid_until:%Y-%m-%d} (exclusive), not now",
                clause="period",
                hint=ask + " for a new period",
                grant_id=current.grant_id,
            )
        if current.queries_remaining is not None and current.queries_remaining < 1:
            raise ContractViolation(
                f"grant GRANT-{current.grant_id} allows {current.max_queries} uses; all are spent",
                clause="count",
                hint=ask + " for more uses",
                grant_id=current.grant_id,
            )
        raise BudgetExhausted(
            f"grant GRANT-{current.grant_id} has {from_nano(current.epsilon_remaining_nano):g} ε "
            f"left; this use needs {from_nano(cost):g} ε",
            budget="grant",
            hint=f"lower {param('epsilon')}, or " + ask + " for more ε",
            grant_id=current.grant_id,
        )

    def mark_touched(self, reservation: Reservation) -> None:
        """Record that data was read: from now on the reservation can never be released."""

        def attempt(session: Session) -> None:
            table = ledger_entries
            done = session.execute(
                update(table)
                .where(table.c.id.in_(reservation.entry_ids), table.c.state == RESERVED)
                .values(state=TOUCHED, touched_at=self.clock())
                .returning(table.c.id)
            ).all()
            if len(done) != len(reservation.held):
                self._expect(session, reservation, (TOUCHED,), "mark as touched")

        self._retrying(attempt)

    def release(self, reservation: Reservation) -> None:
        """Give the ε, the δ and the use back; only while no data was touched."""

        def attempt(session: Session) -> None:
            table = ledger_entries
            released = _release(
                session,
                self.clock(),
                table.c.id.in_(reservation.entry_ids),
                table.c.state == RESERVED,
            )
            if released != len(reservation.held):
                self._expect(session, reservation, (), "release")

        self._retrying(attempt)

    def _release_stale(self, consumer_id: int) -> None:
        """Release the consumer's reservations untouched for :data:`STALE_RESERVATION`
        (one read when there are none, as almost always)."""
        table = ledger_entries
        stale = (
            table.c.consumer_id == consumer_id,
            table.c.finished_at.is_(None),
            table.c.state == RESERVED,
            table.c.created_at < self.clock() - STALE_RESERVATION,
        )
        with self.db.read() as session:
            if session.execute(select(table.c.id).where(*stale).limit(1)).first() is None:
                return

        self._retrying(lambda session: _release(session, self.clock(), *stale))

    def complete(
        self,
        reservation: Reservation,
        *,
        rows_scanned: int | None = None,
        answer: tuple[bytes, bytes] | None = None,
        also: Callable[[Session], None] | None = None,
    ) -> None:
        """Close a successful use: it is now metered, and never refundable.

        ``answer`` is ``(fingerprint, answer_bytes)``: stored in the same transaction so
        that :meth:`recall` returns it, byte for byte, for the same query later. ``also``
        writes in that transaction too (one commit for both).
        """

        def attempt(session: Session) -> None:
            now = self.clock()
            table = ledger_entries
            done = session.execute(
                update(table)
                .where(
                    table.c.id.in_(reservation.entry_ids),
                    table.c.state.in_((RESERVED, TOUCHED)),
                )
                .values(state=COMPLETED, rows_scanned=rows_scanned, finished_at=now)
                .returning(table.c.id)
            ).all()
            if len(done) != len(reservation.held):
                self._expect(session, reservation, (), "complete")
            if answer is not None:
                fingerprint, body = answer
                insert_ignore(
                    session,
                    stored_answers,
                    {
                        "consumer_id": reservation.consumer_id,
                        "fingerprint": fingerprint,
                        "entry_id": reservation.id,
                        "answer": body,
                        "created_at": now,
                    },
                )
            if also is not None:
                also(session)

        self._retrying(attempt)

    def _expect(
        self, session: Session, reservation: Reservation, ok: Sequence[str], verb: str
    ) -> None:
        state = session.scalar(
            select(ledger_entries.c.state).where(ledger_entries.c.id == reservation.id)
        )
        if state is None:
            raise NotFound(
                f"no reservation {reservation.id} in the ledger",
                hint="reserve ε with Ledger.reserve first",
            )
        if state in ok:
            return
        hint = (
            "ε spent on data is never refunded: a refund that depends on the data leaks it"
            if state in (TOUCHED, COMPLETED)
            else "a released reservation is over; reserve again"
        )
        raise Conflict(f"cannot {verb} reservation {reservation.id}: it is {state}", hint=hint)

    def recall(self, consumer_id: int, fingerprint: bytes) -> bytes | None:
        """The stored answer to an earlier, paid query with this fingerprint, if any."""
        with self.db.connect() as connection:
            return connection.scalar(
                select(stored_answers.c.answer).where(
                    stored_answers.c.consumer_id == consumer_id,
                    stored_answers.c.fingerprint == fingerprint,
                )
            )

    # -- caps -----------------------------------------------------------------------

    def set_cap(
        self, dataset_id: int, epsilon: float, *, delta: float | None = None, actor: str
    ) -> Cap[int]:
        """Set a dataset's global ε cap, and its δ cap if given (else it is kept); neither
        can go below what was already spent."""
        return self._retrying(
            lambda session: write_cap(
                session, dataset_id, epsilon, delta=delta, actor=actor, now=self.clock()
            )
        )

    def cap(self, dataset_id: int) -> Cap[int] | None:
        with self.db.connect() as connection:
            row = _cap_row(connection, dataset_id)
            return None if row is None else cap_view(row)

    # -- reading --------------------------------------------------------------------

    def budgets(
        self,
        *,
        consumer_id: int | None = None,
        dataset_ids: Sequence[int] | None = None,
        include_closed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[BudgetRecord[int]]:
        """Budgets with their spend summed from the ledger rows (not from a counter), by
        dataset then grant: the ``limit`` of them from ``offset`` (all when None).

        References are ids: the budget's dataset, consumer and grant.
        """
        entries = ledger_entries
        with self.db.connect() as connection:
            query = _budgets(select(budgets), consumer_id, dataset_ids, include_closed)
            query = query.order_by(budgets.c.dataset_id, budgets.c.id).limit(limit).offset(offset)
            rows = connection.execute(query).all()
            spends = {
                budget_id: (eps, delta, uses)
                for budget_id, eps, delta, uses in connection.execute(
                    select(
                        entries.c.budget_id,
                        func.coalesce(func.sum(entries.c.epsilon_nano), 0),
                        func.coalesce(func.sum(entries.c.delta), 0.0),
                        func.count(),
                    )
                    .where(
                        entries.c.budget_id.in_([r.id for r in rows]),
                        entries.c.state.in_(SPENT_STATES),
                    )
                    .group_by(entries.c.budget_id)
                )
            }
            caps = {
                c.dataset_id: cap_view(c)
                for c in connection.execute(
                    select(dataset_caps).where(
                        dataset_caps.c.dataset_id.in_({r.dataset_id for r in rows})
                    )
                )
            }
            out: list[BudgetRecord[int]] = []
            for r in rows:
                eps, delta, uses = spends.get(r.id, (0, 0.0, 0))
                out.append(
                    BudgetRecord(
                        dataset=r.dataset_id,
                        consumer=r.consumer_id,
                        grant=r.grant_id,
                        state=r.state,
                        epsilon_granted=from_nano(r.epsilon_total_nano),
                        epsilon_spent=from_nano(int(eps)),
                        epsilon_left=from_nano(r.epsilon_remaining_nano),
                        delta_spent=float(delta),
                        max_queries=r.max_queries,
                        queries_used=int(uses),
                        valid_from=r.valid_from.date(),
                        # The table keeps the exclusive end (midnight after the last day).
                        valid_until=(r.valid_until - timedelta(days=1)).date(),
                        cap=caps.get(r.dataset_id),
                    )
                )
            return out

    def count_budgets(
        self,
        *,
        consumer_id: int | None = None,
        dataset_ids: Sequence[int] | None = None,
        include_closed: bool = False,
    ) -> int:
        """How many budgets :meth:`budgets` lists in all."""
        with self.db.connect() as connection:
            query = _budgets(select(budgets.c.id), consumer_id, dataset_ids, include_closed)
            return count_rows(connection, query)

    def entries(
        self,
        *,
        consumer_id: int | None = None,
        dataset_ids: Sequence[int] | None = None,
        states: Sequence[str] | None = None,
        finished_from: datetime | None = None,
        finished_before: datetime | None = None,
    ) -> list[Entry]:
        table = ledger_entries
        with self.db.connect() as connection:
            query = select(table).order_by(table.c.id)
            if consumer_id is not None:
                query = query.where(table.c.consumer_id == consumer_id)
            if dataset_ids is not None:
                query = query.where(table.c.dataset_id.in_(list(dataset_ids)))
            if states is not None:
                query = query.where(table.c.state.in_(list(states)))
            if finished_from is not None:
                query = query.where(table.c.finished_at >= finished_from)
            if finished_before is not None:
                query = query.where(table.c.finished_at < finished_before)
            return [entry_view(r) for r in connection.execute(query)]

    def check(self) -> list[str]:
        """Every place where a budget or cap disagrees with the ledger rows; [] if none."""
        problems: list[str] = []
        entries = ledger_entries
        with self.db.connect() as connection:
            spent = (
                select(entries.c.budget_id, func.sum(entries.c.epsilon_nano), func.count())
                .where(entries.c.state.in_(SPENT_STATES))
                .group_by(entries.c.budget_id)
            )
            by_budget = {b: (int(e), int(n)) for b, e, n in connection.execute(spent)}
            for budget in connection.execute(select(budgets)):
                eps, uses = by_budget.get(budget.id, (0, 0))
                if budget.epsilon_total_nano - budget.epsilon_remaining_nano != eps:
                    problems.append(f"budget {budget.id}: debited ε differs from its ledger rows")
                if budget.max_queries is not None and (
                    budget.max_queries - (budget.queries_remaining or 0) != uses
                ):
                    problems.append(f"budget {budget.id}: use count differs from its ledger rows")
            per_dataset = (
                select(entries.c.dataset_id, func.sum(entries.c.epsilon_nano))
                .where(entries.c.state.in_(SPENT_STATES))
                .group_by(entries.c.dataset_id)
            )
            by_dataset = {d: int(e) for d, e in connection.execute(per_dataset)}
            bounds = select(_versions.c.dataset_id, func.sum(_versions.c.bound_epsilon_nano))
            for dataset_id, nano in connection.execute(bounds.group_by(_versions.c.dataset_id)):
                by_dataset[dataset_id] = by_dataset.get(dataset_id, 0) + int(nano or 0)
            risks: dict[int, int] = {}
            for dataset_id, delta in connection.execute(
                select(entries.c.dataset_id, entries.c.delta).where(
                    entries.c.state.in_(SPENT_STATES), entries.c.delta > 0
                )
            ):
                risks[dataset_id] = risks.get(dataset_id, 0) + to_atto(delta)
            for cap in connection.execute(select(dataset_caps)):
                if cap.cap_nano - cap.remaining_nano != by_dataset.get(cap.dataset_id, 0):
                    problems.append(f"dataset {cap.dataset_id}: cap spend differs from its ledger")
                if cap.delta_cap_atto - cap.delta_remaining_atto != risks.get(cap.dataset_id, 0):
                    problems.append(f"dataset {cap.dataset_id}: δ spend differs from its ledger")
        return problems

    # -- transactions ---------------------------------------------------------------

    def _retrying(self, attempt: Callable[[Session], _T]) -> _T:
        for tries in _backoff():
            try:
                with self.db.write() as session:
                    return attempt(session)
            except OperationalError as error:
                state = getattr(error.orig, "sqlstate", None)
                if state not in _RETRY_SQLSTATES or tries == _RETRIES:
                    raise
        raise AssertionError("unreachable")


def write_cap(
    session: Session,
    dataset_id: int,
    epsilon: float,
    *,
    delta: float | None = None,
    actor: str,
    now: datetime,
) -> Cap[int]:
    """Set a dataset's global ε cap, and its δ cap unless ``delta`` is None, inside the
    caller's transaction (see :meth:`Ledger.set_cap`). A new cap row without ``delta``
    has a δ cap of 0."""
    new = to_nano(epsilon, round_up=False)
    caps = dataset_caps
    spent = caps.c.cap_nano - caps.c.remaining_nano
    clauses = [caps.c.dataset_id == dataset_id, spent <= new]
    values: dict[str, Any] = {"cap_nano": new, "remaining_nano": new - spent}
    risk = None if delta is None else to_atto(delta, round_up=False)
    if risk is not None:
        risked = caps.c.delta_cap_atto - caps.c.delta_remaining_atto
        clauses.append(risked <= risk)
        values |= {"delta_cap_atto": risk, "delta_remaining_atto": risk - risked}
    done = session.execute(
        update(caps)
        .where(*clauses)
        .values(**values, updated_by=actor, updated_at=now)
        .returning(caps.c.dataset_id)
    ).first()
    if done is None:
        row = _cap_row(session, dataset_id)
        if row is not None:
            used = from_nano(row.cap_nano - row.remaining_nano)
            if used > from_nano(new):
                raise Conflict(
                    f"dataset {dataset_id} has already spent {used:g} ε; a cap of "
                    f"{from_nano(new):g} ε would be below it",
                    hint=f"set a cap of at least {used:g} ε",
                )
            at_risk = from_atto(row.delta_cap_atto - row.delta_remaining_atto)
            raise Conflict(
                f"dataset {dataset_id} has already spent {at_risk:.3g} δ; a δ cap of "
                f"{from_atto(risk or 0):.3g} would be below it",
                hint=f"set delta_cap to at least {at_risk:.3g} in the dataset's policy",
            )
        session.execute(
            insert(caps).values(
                dataset_id=dataset_id,
                cap_nano=new,
                remaining_nano=new,
                delta_cap_atto=risk or 0,
                delta_remaining_atto=risk or 0,
                updated_by=actor,
                updated_at=now,
            )
        )
    row = _cap_row(session, dataset_id)
    assert row is not None
    return cap_view(row)


def debit_bound(
    session: Session,
    dataset_id: int,
    epsilon: float,
    *,
    default_cap: float,
    actor: str,
    now: datetime,
) -> None:
    """Take the ε of a new version's rows-per-unit estimate and of the rows it removes
    from its dataset's global ε cap, inside the transaction that adds the version (see
    :mod:`entrepot.privacy.bounds`).

    A dataset without a cap row gets one at ``default_cap`` first (its policy's
    ``epsilon.dataset_cap``), as a grant would give it. Raises
    :class:`BudgetExhausted` (``budget="dataset"``) when the cap has less left: the
    version is then not added. :meth:`Ledger.check` counts these debits with the
    versions' ``bound_epsilon_nano``.
    """
    cost = to_nano(epsilon)
    ensure_cap(session, dataset_id, default_cap, actor=actor, now=now)
    caps = dataset_caps
    done = session.execute(
        update(caps)
        .where(caps.c.dataset_id == dataset_id, caps.c.remaining_nano >= cost)
        .values(remaining_nano=caps.c.remaining_nano - cost)
        .returning(caps.c.dataset_id)
    ).first()
    if done is None:
        row = _cap_row(session, dataset_id)
        left = 0 if row is None else row.remaining_nano
        raise BudgetExhausted(
            f"the dataset's global ε cap has {from_nano(left):g} ε left; estimating the new "
            f"version's rows per unit and the rows that bound removes needs "
            f"{from_nano(cost):g} ε, so nothing was published",
            budget="dataset",
            hint="raise the cap (`entrepot budget set-cap`), or set contributions.rows_per_unit "
            "(or contributions.bound_epsilon: 0) in the dataset's policy",
            dataset_id=dataset_id,
            resource="epsilon",
        )


def tighten_delta_cap(
    session: Session, dataset_id: int, delta: float, *, actor: str, now: datetime
) -> None:
    """Lower a dataset's δ cap to ``delta`` inside the caller's transaction, if it is above.

    What was spent stays spent: a cap already spent past ``delta`` stops at the spend,
    with nothing left. A dataset with no cap row yet is left alone.
    """
    new = to_atto(delta, round_up=False)
    caps = dataset_caps
    spent = caps.c.delta_cap_atto - caps.c.delta_remaining_atto
    # Both right-hand sides read the row as it was before this UPDATE (SQL semantics).
    session.execute(
        update(caps)
        .where(caps.c.dataset_id == dataset_id, caps.c.delta_cap_atto > new)
        .values(
            delta_cap_atto=case((spent > new, spent), else_=new),
            delta_remaining_atto=case((spent > new, 0), else_=new - spent),
            updated_by=actor,
            updated_at=now,
        )
    )


def _release(session: Session, now: datetime, *where: Any) -> int:
    """Release the ledger rows matching ``where`` and give back their ε, δ and use; how
    many were released."""
    table = ledger_entries
    done = session.execute(
        update(table)
        .where(*where)
        .values(state=RELEASED, finished_at=now)
        .returning(table.c.epsilon_nano, table.c.budget_id, table.c.dataset_id, table.c.delta)
    ).all()
    # The same order as reserve() takes its row locks in.
    ordered = sorted(done, key=lambda row: row[2])
    for cost, budget_id, _, _ in ordered:
        session.execute(
            update(budgets)
            .where(budgets.c.id == budget_id)
            .values(
                epsilon_remaining_nano=budgets.c.epsilon_remaining_nano + cost,
                queries_remaining=budgets.c.queries_remaining + 1,
            )
        )
    for cost, _, dataset_id, delta in ordered:
        # The row keeps the δ asked for; rounded as reserve() rounded it.
        session.execute(
            update(dataset_caps)
            .where(dataset_caps.c.dataset_id == dataset_id)
            .values(
                remaining_nano=dataset_caps.c.remaining_nano + cost,
                delta_remaining_atto=dataset_caps.c.delta_remaining_atto + to_atto(delta),
            )
        )
    return len(done)


def _backoff() -> Iterator[int]:
    for tries in range(1, _RETRIES + 1):
        yield tries
        time.sleep(0.005 * 2**tries)


def _budgets(
    query: Select[Any],
    consumer_id: int | None,
    dataset_ids: Sequence[int] | None,
    include_closed: bool,
) -> Select[Any]:
    if consumer_id is not None:
        query = query.where(budgets.c.consumer_id == consumer_id)
    if dataset_ids is not None:
        query = query.where(budgets.c.dataset_id.in_(list(dataset_ids)))
    return query if include_closed else query.where(budgets.c.state == "open")


def _cap_row(session: Session | Connection, dataset_id: int) -> Any:
    """The row of ``dataset_id``'s caps as it is now; None if it has none."""
    return session.execute(
        select(dataset_caps).where(dataset_caps.c.dataset_id == dataset_id)
    ).first()
