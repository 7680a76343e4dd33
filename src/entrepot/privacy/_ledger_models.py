"""The ledger's mapped classes, built on its Core tables (:mod:`entrepot.privacy._ledger_tables`).

The ledger itself reads and writes the tables with Core; these classes serve the
modules that join budgets and ledger rows to their own mapped classes (metering,
reconciliation, contracts). The partial unique index of open budgets is declared
here, with the classes the migrations are compared with: naming its PostgreSQL
clause loads that dialect's package, which reading budgets on SQLite does without.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlalchemy import text as sa_text
from sqlalchemy.orm import Mapped

from entrepot.db import Base
from entrepot.privacy._ledger_tables import budgets, dataset_caps, ledger_entries, stored_answers

__all__ = ["Budget", "DatasetCap", "LedgerEntry", "StoredAnswer"]

# At most one open budget per (consumer, dataset): reserve() needs no choice.
Index(
    "uq_budgets_open_consumer_dataset",
    budgets.c.consumer_id,
    budgets.c.dataset_id,
    unique=True,
    sqlite_where=sa_text("state = 'open'"),
    postgresql_where=sa_text("state = 'open'"),
)


class Budget(Base):
    """The ε and use count a grant gives one consumer on one dataset."""

    __table__ = budgets

    id: Mapped[int]
    grant_id: Mapped[int]
    consumer_id: Mapped[int]
    dataset_id: Mapped[int]
    epsilon_total_nano: Mapped[int]
    epsilon_remaining_nano: Mapped[int]
    max_queries: Mapped[int | None]
    queries_remaining: Mapped[int | None]
    price_per_query_cents: Mapped[int]
    price_per_epsilon_cents: Mapped[int]
    state: Mapped[str]
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    opened_at: Mapped[datetime]


class DatasetCap(Base):
    """The global ε and δ caps of a dataset, across every consumer together."""

    __table__ = dataset_caps

    dataset_id: Mapped[int]
    cap_nano: Mapped[int]
    remaining_nano: Mapped[int]
    delta_cap_atto: Mapped[int]
    delta_remaining_atto: Mapped[int]
    updated_by: Mapped[str]
    updated_at: Mapped[datetime]


class LedgerEntry(Base):
    """One use of a dataset: who, which version, the query text, ε, δ, price, state."""

    __table__ = ledger_entries

    id: Mapped[int]
    budget_id: Mapped[int]
    consumer_id: Mapped[int]
    dataset_id: Mapped[int]
    version: Mapped[int]
    action: Mapped[str]
    query_text: Mapped[str]
    query_sha256: Mapped[str]
    epsilon_nano: Mapped[int]
    delta: Mapped[float]
    price_cents: Mapped[int]
    rows_scanned: Mapped[int | None]
    state: Mapped[str]
    actor: Mapped[str]
    created_at: Mapped[datetime]
    touched_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StoredAnswer(Base):
    """An answer already paid for, returned byte for byte when the same query comes back."""

    __table__ = stored_answers

    id: Mapped[int]
    consumer_id: Mapped[int]
    fingerprint: Mapped[bytes]
    entry_id: Mapped[int]
    answer: Mapped[bytes]
    created_at: Mapped[datetime]
