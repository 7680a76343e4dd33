"""The ledger's tables, the frozen views it returns, and ε and δ arithmetic.

:mod:`entrepot.privacy.ledger` holds the logic (reservations, caps, checks); this
module its rows, as Core tables: their mapped classes
(:mod:`entrepot.privacy._ledger_models`) are built on them, so that reading budgets
loads no ORM. ε is an integer count of nano-ε everywhere below, and a cap's δ an
integer count of atto-δ.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
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
from sqlalchemy.exc import IntegrityError

from entrepot._numbers import MAX_DELTA, MAX_EPSILON
from entrepot.db import METADATA
from entrepot.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "ATTO",
    "COMPLETED",
    "NANO",
    "RELEASED",
    "RESERVED",
    "SPENT_STATES",
    "TOUCHED",
    "BudgetRecord",
    "Cap",
    "Debit",
    "Entry",
    "Held",
    "Reservation",
    "budgets",
    "cap_view",
    "close_budget",
    "dataset_caps",
    "ensure_cap",
    "entry_view",
    "from_atto",
    "from_nano",
    "insert_ignore",
    "ledger_entries",
    "open_budget",
    "price_cents",
    "stored_answers",
    "to_atto",
    "to_nano",
]

# One ε is 10^9 nano-ε: fine enough for any ε a policy would allow; an ε is at most
# MAX_EPSILON, so BIGINT never overflows.
NANO = 10**9
# One δ is 10^18 atto-δ: policies' δs (1e-6 down to 1e-15 or so) are thousands of units
# or more, a smaller one is charged one unit (costs round up); a δ is at most
# MAX_DELTA, so BIGINT never overflows.
ATTO = 10**18

Ref = TypeVar("Ref")
Other = TypeVar("Other")

# Reservation states; only RESERVED may become RELEASED.
RESERVED, TOUCHED, COMPLETED, RELEASED = "reserved", "touched", "completed", "released"
SPENT_STATES = (RESERVED, TOUCHED, COMPLETED)


def _decimal(epsilon: float | str | Decimal, what: str, example: str, most: Decimal) -> Decimal:
    try:
        value = Decimal(str(epsilon))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value > most:
        raise InvalidInput(
            f"{what} must be a finite number from 0 to {most:,}, got {epsilon!r}",
            hint=f"give {what} as a plain decimal number such as {example}",
        )
    return value


def to_nano(epsilon: float | str | Decimal, *, round_up: bool = True) -> int:
    """ε as integer nano-ε; costs round up, budgets (``round_up=False``) round down."""
    value = _decimal(epsilon, "ε", "0.5", Decimal(MAX_EPSILON)) * NANO
    return int(value.to_integral_value(ROUND_CEILING if round_up else ROUND_FLOOR))


def from_nano(nano: int) -> float:
    return nano / NANO


def to_atto(delta: float | str | Decimal, *, round_up: bool = True) -> int:
    """δ as integer atto-δ; costs round up, caps (``round_up=False``) round down."""
    value = _decimal(delta, "δ", "1e-10", Decimal(MAX_DELTA)) * ATTO
    return int(value.to_integral_value(ROUND_CEILING if round_up else ROUND_FLOOR))


def from_atto(atto: int) -> float:
    return atto / ATTO


def price_cents(epsilon_nano: int, per_query_cents: int, per_epsilon_cents: int) -> int:
    """The price of one use: a fixed part plus ε times the per-ε price, to the cent."""
    per_epsilon = Decimal(epsilon_nano) * per_epsilon_cents / NANO
    return per_query_cents + int(per_epsilon.to_integral_value(ROUND_HALF_UP))


# The ε and use count a grant gives one consumer on one dataset. At most one open
# budget per (consumer, dataset), so reserve() needs no choice: that partial unique
# index is declared with the mapped classes (entrepot.privacy._ledger_models), as
# naming PostgreSQL's clause loads that dialect's package.
budgets = Table(
    "budgets",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("grant_id", Integer, ForeignKey("grants.id"), nullable=False, unique=True),
    Column("consumer_id", Integer, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, index=True),
    Column("epsilon_total_nano", BigInteger, nullable=False),
    Column("epsilon_remaining_nano", BigInteger, nullable=False),
    Column("max_queries", Integer, nullable=True),
    Column("queries_remaining", Integer, nullable=True),
    Column("price_per_query_cents", BigInteger, nullable=False, default=0),
    Column("price_per_epsilon_cents", BigInteger, nullable=False, default=0),
    Column("state", String(16), nullable=False, default="open"),
    Column("valid_from", DateTime, nullable=False),
    Column("valid_until", DateTime, nullable=False),
    Column("opened_at", DateTime, nullable=False),
    CheckConstraint("epsilon_remaining_nano >= 0", name="epsilon_remaining"),
    CheckConstraint(
        "queries_remaining IS NULL OR queries_remaining >= 0", name="queries_remaining"
    ),
)

# The global ε and δ caps of a dataset, across every consumer together.
dataset_caps = Table(
    "dataset_caps",
    METADATA,
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("cap_nano", BigInteger, nullable=False),
    Column("remaining_nano", BigInteger, nullable=False),
    Column("delta_cap_atto", BigInteger, nullable=False),
    Column("delta_remaining_atto", BigInteger, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    CheckConstraint("remaining_nano >= 0", name="remaining"),
    CheckConstraint("remaining_nano <= cap_nano", name="within_cap"),
    CheckConstraint("delta_remaining_atto >= 0", name="delta_remaining"),
    CheckConstraint("delta_remaining_atto <= delta_cap_atto", name="delta_within_cap"),
)

# One use of a dataset: who, which version, the query text, ε, δ, price, state.
ledger_entries = Table(
    "ledger_entries",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("budget_id", Integer, ForeignKey("budgets.id"), nullable=False, index=True),
    Column("consumer_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("query_text", Text, nullable=False),
    Column("query_sha256", String(64), nullable=False),
    Column("epsilon_nano", BigInteger, nullable=False),
    Column("delta", Float, nullable=False),
    Column("price_cents", BigInteger, nullable=False),
    Column("rows_scanned", BigInteger, nullable=True),
    Column("state", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("touched_at", DateTime, nullable=True),
    Column("finished_at", DateTime, nullable=True),
    CheckConstraint("state IN ('reserved', 'touched', 'completed', 'released')", name="state"),
    Index("ix_ledger_entries_consumer_finished", "consumer_id", "finished_at"),
    Index("ix_ledger_entries_dataset_finished", "dataset_id", "finished_at"),
)

# An answer already paid for, returned byte for byte when the same query comes back.
stored_answers = Table(
    "stored_answers",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("consumer_id", Integer, ForeignKey("organizations.id"), nullable=False),
    Column("fingerprint", LargeBinary(64), nullable=False),
    Column("entry_id", Integer, ForeignKey("ledger_entries.id"), nullable=False),
    Column("answer", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("consumer_id", "fingerprint"),
)


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

    def to_body(self) -> dict[str, Any]:
        """The cap as its JSON object on the wire (``POST /v1/budgets/caps``), field by
        field in order; tests pin it equal to pydantic's dump of the wire shape, which
        the local client does without building it."""
        return {name: getattr(self, name) for name in _CAP_FIELDS}


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

    def to_body(self) -> dict[str, Any]:
        """The budget as its JSON object on the wire (``GET /v1/budgets``, ``entrepot
        budget --json``): its fields in order, its days in ISO 8601, its cap's object;
        tests pin it equal to pydantic's dump of the wire shape."""
        body = {name: getattr(self, name) for name in _BUDGET_FIELDS}
        body["valid_from"] = self.valid_from.isoformat()
        body["valid_until"] = self.valid_until.isoformat()
        body["cap"] = None if self.cap is None else self.cap.to_body()
        return body


_CAP_FIELDS = tuple(f.name for f in fields(Cap))
_BUDGET_FIELDS = tuple(f.name for f in fields(BudgetRecord))


def entry_view(row: Any) -> Entry:
    """A row of :data:`ledger_entries` (or its mapped class) as the node reads it."""
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


def cap_view(row: Any) -> Cap[int]:
    """A row of :data:`dataset_caps` (or its mapped class) as its record."""
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
        dataset_caps,
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
    opened = insert(budgets).returning(budgets.c.id)
    return int(
        session.execute(
            opened.values(
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
        ).scalar_one()
    )


def close_budget(session: Session, grant_id: int, state: str) -> None:
    """Close a grant's budget (``revoked`` or ``expired``) in the caller's transaction."""
    session.execute(
        update(budgets)
        .where(budgets.c.grant_id == grant_id, budgets.c.state == "open")
        .values(state=state)
    )
