"""The ledger's tables, the frozen views it returns, and ε and δ arithmetic.

:mod:`entrepot.privacy.ledger` holds the logic (reservations, caps, checks); this
module its rows. ε is an integer count of nano-ε everywhere below, and a cap's δ an
integer count of atto-δ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    update,
)
from sqlalchemy import text as sa_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from entrepot.db import Base
from entrepot.errors import InvalidInput

__all__ = [
    "ATTO",
    "COMPLETED",
    "NANO",
    "RELEASED",
    "RESERVED",
    "SPENT_STATES",
    "TOUCHED",
    "Budget",
    "BudgetRecord",
    "Cap",
    "DatasetCap",
    "Debit",
    "Entry",
    "Held",
    "LedgerEntry",
    "Reservation",
    "StoredAnswer",
    "close_budget",
    "ensure_cap",
    "from_atto",
    "from_nano",
    "open_budget",
    "price_cents",
    "to_atto",
    "to_nano",
]

# One ε is 10^9 nano-ε: fine enough for any ε a policy would allow, and 2^63 nano-ε is
# still 9.2e9 ε, so BIGINT never overflows.
NANO = 10**9
# One δ is 10^18 atto-δ: policies' δs (1e-6 down to 1e-15 or so) are thousands of units
# or more, a smaller one is charged one unit (costs round up), and δ never exceeds 1,
# so 2^63 atto-δ (9.2 δ) never overflows BIGINT.
ATTO = 10**18

Ref = TypeVar("Ref")
Other = TypeVar("Other")

# Reservation states; only RESERVED may become RELEASED.
RESERVED, TOUCHED, COMPLETED, RELEASED = "reserved", "touched", "completed", "released"
SPENT_STATES = (RESERVED, TOUCHED, COMPLETED)


def _decimal(epsilon: float | str | Decimal, what: str, example: str) -> Decimal:
    try:
        value = Decimal(str(epsilon))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise InvalidInput(
            f"{what} must be a finite number ≥ 0, got {epsilon!r}",
            hint=f"give {what} as a plain decimal number such as {example}",
        )
    return value


def to_nano(epsilon: float | str | Decimal, *, round_up: bool = True) -> int:
    """ε as integer nano-ε; costs round up, budgets (``round_up=False``) round down."""
    value = _decimal(epsilon, "ε", "0.5") * NANO
    return int(value.to_integral_value(ROUND_CEILING if round_up else ROUND_FLOOR))


def from_nano(nano: int) -> float:
    return nano / NANO


def to_atto(delta: float | str | Decimal, *, round_up: bool = True) -> int:
    """δ as integer atto-δ; costs round up, caps (``round_up=False``) round down."""
    value = _decimal(delta, "δ", "1e-10") * ATTO
    return int(value.to_integral_value(ROUND_CEILING if round_up else ROUND_FLOOR))


def from_atto(atto: int) -> float:
    return atto / ATTO


def price_cents(epsilon_nano: int, per_query_cents: int, per_epsilon_cents: int) -> int:
    """The price of one use: a fixed part plus ε times the per-ε price, to the cent."""
    per_epsilon = Decimal(epsilon_nano) * per_epsilon_cents / NANO
    return per_query_cents + int(per_epsilon.to_integral_value(ROUND_HALF_UP))


class Budget(Base):
    """The ε and use count a grant gives one consumer on one dataset."""

    __tablename__ = "budgets"
    __table_args__ = (
        CheckConstraint("epsilon_remaining_nano >= 0", name="epsilon_remaining"),
        CheckConstraint(
            "queries_remaining IS NULL OR queries_remaining >= 0", name="queries_remaining"
        ),
        # At most one open budget per (consumer, dataset): reserve() needs no choice.
        Index(
            "uq_budgets_open_consumer_dataset",
            "consumer_id",
            "dataset_id",
            unique=True,
            sqlite_where=sa_text("state = 'open'"),
            postgresql_where=sa_text("state = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), unique=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    epsilon_total_nano: Mapped[int] = mapped_column(BigInteger)
    epsilon_remaining_nano: Mapped[int] = mapped_column(BigInteger)
    max_queries: Mapped[int | None] = mapped_column(Integer)
    queries_remaining: Mapped[int | None] = mapped_column(Integer)
    price_per_query_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    price_per_epsilon_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16), default="open")
    valid_from: Mapped[datetime] = mapped_column(DateTime)
    valid_until: Mapped[datetime] = mapped_column(DateTime)
    opened_at: Mapped[datetime] = mapped_column(DateTime)


class DatasetCap(Base):
    """The global ε and δ caps of a dataset, across every consumer together."""

    __tablename__ = "dataset_caps"
    __table_args__ = (
        CheckConstraint("remaining_nano >= 0", name="remaining"),
        CheckConstraint("remaining_nano <= cap_nano", name="within_cap"),
        CheckConstraint("delta_remaining_atto >= 0", name="delta_remaining"),
        CheckConstraint("delta_remaining_atto <= delta_cap_atto", name="delta_within_cap"),
    )

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    cap_nano: Mapped[int] = mapped_column(BigInteger)
    remaining_nano: Mapped[int] = mapped_column(BigInteger)
    delta_cap_atto: Mapped[int] = mapped_column(BigInteger)
    delta_remaining_atto: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class LedgerEntry(Base):
    """One use of a dataset: who, which version, the query text, ε, δ, price, state."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("state IN ('reserved', 'touched', 'completed', 'released')", name="state"),
        Index("ix_ledger_entries_consumer_finished", "consumer_id", "finished_at"),
        Index("ix_ledger_entries_dataset_finished", "dataset_id", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id"), index=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    query_text: Mapped[str] = mapped_column(Text)
    query_sha256: Mapped[str] = mapped_column(String(64))
    epsilon_nano: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[float] = mapped_column(Float)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    rows_scanned: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    touched_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class StoredAnswer(Base):
    """An answer already paid for, returned byte for byte when the same query comes back."""

    __tablename__ = "stored_answers"
    __table_args__ = (UniqueConstraint("consumer_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(64))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    answer: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class Debit:
    """One debit a use asks for: ε and δ from a dataset's grant budget and its cap."""

    dataset_id: int
    version: int
    epsilon: float
    delta: float = 0.0


@dataclass(frozen=True)
class Held:
    """One debit as reserved: its ledger row and the budget it was taken from."""

    entry_id: int
    budget_id: int
    dataset_id: int
    version: int
    epsilon: float
    delta: float
    price_cents: int


@dataclass(frozen=True)
class Reservation:
    """ε held for one use, over one or several datasets; it moves as a whole.

    Hand it back to :meth:`Ledger.mark_touched`, ``complete`` or ``release``. Its ``id``
    is its first ledger row's: the one the log entry and a stored answer name.
    """

    consumer_id: int
    action: str
    held: tuple[Held, ...]

    @property
    def id(self) -> int:
        return self.held[0].entry_id

    @property
    def entry_ids(self) -> tuple[int, ...]:
        return tuple(h.entry_id for h in self.held)

    @property
    def epsilon(self) -> float:
        return sum(h.epsilon for h in self.held)

    @property
    def price_cents(self) -> int:
        return sum(h.price_cents for h in self.held)


@dataclass(frozen=True)
class Entry:
    """A ledger row as the rest of the node reads it."""

    id: int
    budget_id: int
    consumer_id: int
    dataset_id: int
    version: int
    action: str
    query_text: str
    query_sha256: str
    epsilon: float
    epsilon_nano: int
    delta: float
    price_cents: int
    rows_scanned: int | None
    state: str
    actor: str
    created_at: datetime
    finished_at: datetime | None


# Lets pydantic, which derives the wire schema from these records, read the field
# docstrings below as the fields' descriptions.
_DOCUMENTED: dict[str, Any] = {"use_attribute_docstrings": True}


@dataclass(frozen=True)
class Cap(Generic[Ref]):
    """A dataset's global ε and δ caps, across every consumer together.

    ``Ref`` is how the dataset is referenced: its id where the ledger returns the cap
    (``Cap[int]``), its ``provider/dataset`` reference where parties see it
    (``Cap[str]``, the wire shape).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _DOCUMENTED

    dataset: Ref
    """The dataset: its id, or its ``provider/dataset`` reference."""
    epsilon_cap: float
    """Total ε all consumers together may spend."""
    epsilon_spent: float
    epsilon_left: float
    delta_cap: float
    """Total δ all consumers together may spend (Gaussian queries spend δ)."""
    delta_spent: float
    delta_left: float

    def named(self, dataset: Other) -> Cap[Other]:
        """The same cap, its dataset referenced by ``dataset``."""
        return cast("Cap[Other]", replace(cast("Cap[Any]", self), dataset=dataset))


@dataclass(frozen=True)
class BudgetRecord(Generic[Ref]):
    """One consumer's budget on one dataset, with the dataset's global cap beside it.

    The one record of a budget: the ledger returns it with ids for references
    (``BudgetRecord[int]``), the exchange names them (``BudgetRecord[str]``) and both
    doors show that, unchanged, as the wire shape. Spend is summed from ledger rows.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _DOCUMENTED

    dataset: Ref
    """The dataset: its id, or its ``provider/dataset`` reference."""
    consumer: Ref
    """The consumer organization: its id, or its slug."""
    grant: Ref
    """The grant that opened the budget: its id, or ``GRANT-<id>``."""
    state: str
    """``open``, ``revoked`` or ``expired``."""
    epsilon_granted: float
    epsilon_spent: float
    epsilon_left: float
    delta_spent: float
    max_queries: int | None
    queries_used: int
    valid_from: date
    valid_until: date
    """The last day the budget may be spent."""
    cap: Cap[Ref] | None
    """The dataset's global ε and δ caps, across consumers."""

    def named(self, dataset: Other, consumer: Other, grant: Other) -> BudgetRecord[Other]:
        """The same budget, its dataset, consumer and grant referenced by these names."""
        cap = None if self.cap is None else self.cap.named(dataset)
        renamed = replace(
            cast("BudgetRecord[Any]", self),
            dataset=dataset,
            consumer=consumer,
            grant=grant,
            cap=cap,
        )
        return cast("BudgetRecord[Other]", renamed)


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def entry_view(row: LedgerEntry) -> Entry:
    return Entry(
        id=row.id,
        budget_id=row.budget_id,
        consumer_id=row.consumer_id,
        dataset_id=row.dataset_id,
        version=row.version,
        action=row.action,
        query_text=row.query_text,
        query_sha256=row.query_sha256,
        epsilon=from_nano(row.epsilon_nano),
        epsilon_nano=row.epsilon_nano,
        delta=row.delta,
        price_cents=row.price_cents,
        rows_scanned=row.rows_scanned,
        state=row.state,
        actor=row.actor,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def cap_view(row: DatasetCap) -> Cap[int]:
    return Cap(
        dataset=row.dataset_id,
        epsilon_cap=from_nano(row.cap_nano),
        epsilon_spent=from_nano(row.cap_nano - row.remaining_nano),
        epsilon_left=from_nano(row.remaining_nano),
        delta_cap=from_atto(row.delta_cap_atto),
        delta_spent=from_atto(row.delta_cap_atto - row.delta_remaining_atto),
        delta_left=from_atto(row.delta_remaining_atto),
    )


def insert_ignore(session: Session, table: Any, values: dict[str, Any]) -> None:
    """INSERT that does nothing when the row's unique key exists (both dialects)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
    else:
        try:
            with session.begin_nested():
                session.execute(insert(table).values(**values))
        except IntegrityError:
            pass


def ensure_cap(
    session: Session, dataset_id: int, default_cap: float, *, actor: str, now: datetime
) -> None:
    """Give a dataset its global ε cap at ``default_cap`` (δ cap 0) inside the caller's
    transaction, unless it has one already."""
    cap = to_nano(default_cap, round_up=False)
    insert_ignore(
        session,
        table_of(DatasetCap),
        {
            "dataset_id": dataset_id,
            "cap_nano": cap,
            "remaining_nano": cap,
            "delta_cap_atto": 0,
            "delta_remaining_atto": 0,
            "updated_by": actor,
            "updated_at": now,
        },
    )


def open_budget(
    session: Session,
    *,
    grant_id: int,
    consumer_id: int,
    dataset_id: int,
    epsilon: float | Decimal,
    max_queries: int | None,
    price_per_query_cents: int,
    price_per_epsilon_cents: int,
    valid_from: datetime,
    valid_until: datetime,
    default_cap: float,
    actor: str,
    now: datetime,
) -> int:
    """Open the budget of a new grant, inside the caller's (granting) transaction.

    The dataset gets its global cap here if its provider has not set one yet, so a
    reservation always finds both rows. Its δ cap is then 0: a dataset whose policy was
    never set is governed by the default policy, whose Laplace noise spends no δ;
    setting a policy writes the δ cap (:func:`entrepot.privacy.ledger.write_cap`).
    """
    total = to_nano(epsilon, round_up=False)
    ensure_cap(session, dataset_id, default_cap, actor=actor, now=now)
    budget = Budget(
        grant_id=grant_id,
        consumer_id=consumer_id,
        dataset_id=dataset_id,
        epsilon_total_nano=total,
        epsilon_remaining_nano=total,
        max_queries=max_queries,
        queries_remaining=max_queries,
        price_per_query_cents=price_per_query_cents,
        price_per_epsilon_cents=price_per_epsilon_cents,
        state="open",
        valid_from=valid_from,
        valid_until=valid_until,
        opened_at=now,
    )
    session.add(budget)
    session.flush()
    return budget.id


def close_budget(session: Session, grant_id: int, state: str) -> None:
    """Close a grant's budget (``revoked`` or ``expired``) in the caller's transaction."""
    table = table_of(Budget)
    session.execute(
        update(table)
        .where(table.c.grant_id == grant_id, table.c.state == "open")
        .values(state=state)
    )
