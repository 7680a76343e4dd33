"""Access contracts as SQLAlchemy Core tables, their frozen views, and the listings read
on them.

Declared apart from their mapped classes (:mod:`entrepot.exchange._contract_models`,
built on these tables) so that listing requests and grants runs on Core, without
loading the ORM, the accounts, the ledger or the transparency log. The contracts'
service (:mod:`entrepot.exchange.contracts`) lists through the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Select,
    String,
    Table,
    Text,
    select,
)

from entrepot.clock import rfc3339
from entrepot.db import METADATA, Database, count_rows
from entrepot.exchange._parties import named, visible_to
from entrepot.privacy._ledger_tables import from_nano

if TYPE_CHECKING:
    from entrepot.exchange.actors import Actor

__all__ = [
    "GrantInfo",
    "RequestInfo",
    "Transition",
    "access_requests",
    "contract_events",
    "count_grants",
    "count_requests",
    "grant_view",
    "grants",
    "grants_due",
    "list_grants",
    "list_requests",
    "request_view",
]

access_requests = Table(
    "access_requests",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("consumer_id", Integer, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, index=True),
    Column("purpose", String(64), nullable=False),
    Column("actions", JSON, nullable=False),
    Column("epsilon_nano", BigInteger, nullable=False),
    Column("valid_from", DateTime, nullable=False),
    Column("valid_until", DateTime, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("state", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("state IN ('requested', 'granted', 'refused')", name="state"),
)

grants = Table(
    "grants",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("access_requests.id"), nullable=False, unique=True),
    Column("consumer_id", Integer, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False, index=True),
    Column("purpose", String(64), nullable=False),
    Column("actions", JSON, nullable=False),
    Column("epsilon_nano", BigInteger, nullable=False),
    Column("max_queries", Integer),
    Column("price_per_query_cents", BigInteger, nullable=False),
    Column("price_per_epsilon_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("duties", JSON, nullable=False),
    Column("valid_from", DateTime, nullable=False),
    Column("valid_until", DateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("state IN ('granted', 'revoked', 'expired')", name="state"),
)

# One state transition of a request or a grant.
contract_events = Table(
    "contract_events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("access_requests.id"), nullable=False, index=True),
    Column("grant_id", Integer, ForeignKey("grants.id"), index=True),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("reason", Text, nullable=False, default=""),
)


@dataclass(frozen=True)
class Transition:
    subject: str
    from_state: str | None
    to_state: str
    actor: str
    at: datetime
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "from": self.from_state,
            "to": self.to_state,
            "actor": self.actor,
            "at": rfc3339(self.at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RequestInfo:
    id: int
    consumer: str
    dataset: str
    purpose: str
    actions: tuple[str, ...]
    epsilon: float
    valid_from: date
    valid_until: date
    note: str
    state: str
    created_at: datetime
    grant_id: int | None = None
    history: tuple[Transition, ...] = field(default=(), compare=False)

    @property
    def ref(self) -> str:
        return f"REQ-{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.ref,
            "consumer": self.consumer,
            "dataset": self.dataset,
            "purpose": self.purpose,
            "actions": list(self.actions),
            "epsilon": self.epsilon,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "note": self.note,
            "state": self.state,
            "created_at": rfc3339(self.created_at),
            "grant": None if self.grant_id is None else f"GRANT-{self.grant_id}",
            "history": [t.to_dict() for t in self.history],
        }

    def to_body(self) -> dict[str, Any]:
        """The request as the API's ``RequestOut`` answers it (by its aliases), which
        :meth:`to_dict` is already. The local client answers with it without building
        the model; tests pin it equal to the model's dump."""
        return self.to_dict()


@dataclass(frozen=True)
class GrantInfo:
    id: int
    request_id: int
    consumer: str
    consumer_id: int
    dataset: str
    dataset_id: int
    provider: str
    purpose: str
    actions: tuple[str, ...]
    epsilon: float
    max_queries: int | None
    price_per_query: Decimal
    price_per_epsilon: Decimal
    currency: str
    duties: tuple[str, ...]
    valid_from: date
    valid_until: date
    state: str
    created_at: datetime
    history: tuple[Transition, ...] = field(default=(), compare=False)

    @property
    def ref(self) -> str:
        return f"GRANT-{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.ref,
            "request": f"REQ-{self.request_id}",
            "consumer": self.consumer,
            "dataset": self.dataset,
            "provider": self.provider,
            "purpose": self.purpose,
            "actions": list(self.actions),
            "epsilon": self.epsilon,
            "max_queries": self.max_queries,
            "price_per_query": str(self.price_per_query),
            "price_per_epsilon": str(self.price_per_epsilon),
            "currency": self.currency,
            "duties": list(self.duties),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "state": self.state,
            "created_at": rfc3339(self.created_at),
            "history": [t.to_dict() for t in self.history],
        }

    def to_body(self) -> dict[str, Any]:
        """The grant as the API's ``GrantOut`` answers it (by its aliases), which
        :meth:`to_dict` is already. The local client answers with it without building
        the model; tests pin it equal to the model's dump."""
        return self.to_dict()


def _last_day(valid_until: datetime) -> date:
    """The last day of a period stored as its end: a period "until D" ends as D+1 begins."""
    return (valid_until - timedelta(days=1)).date()


def request_view(row: Any, consumer: str, dataset: str, grant_id: int | None) -> RequestInfo:
    """The view of a row of ``access_requests`` (a Core row or its mapped class), without
    history, given its consumer's slug, its dataset's reference and its grant's id."""
    return RequestInfo(
        id=row.id,
        consumer=consumer,
        dataset=dataset,
        purpose=row.purpose,
        actions=tuple(row.actions),
        epsilon=from_nano(row.epsilon_nano),
        valid_from=row.valid_from.date(),
        valid_until=_last_day(row.valid_until),
        note=row.note,
        state=row.state,
        created_at=row.created_at,
        grant_id=grant_id,
    )


def grant_view(row: Any, consumer: str, dataset: str, provider: str) -> GrantInfo:
    """The view of a row of ``grants`` (a Core row or its mapped class), without history,
    given its consumer's slug, its dataset's reference and its provider's slug."""
    return GrantInfo(
        id=row.id,
        request_id=row.request_id,
        consumer=consumer,
        consumer_id=row.consumer_id,
        dataset=dataset,
        dataset_id=row.dataset_id,
        provider=provider,
        purpose=row.purpose,
        actions=tuple(row.actions),
        epsilon=from_nano(row.epsilon_nano),
        max_queries=row.max_queries,
        price_per_query=Decimal(row.price_per_query_cents) / 100,
        price_per_epsilon=Decimal(row.price_per_epsilon_cents) / 100,
        currency=row.currency,
        duties=tuple(row.duties),
        valid_from=row.valid_from.date(),
        valid_until=_last_day(row.valid_until),
        state=row.state,
        created_at=row.created_at,
    )


def _requests(query: Select[Any], actor: Actor, pending: bool) -> Select[Any]:
    if pending:
        query = query.where(access_requests.c.state == "requested")
    return visible_to(query, access_requests, actor)


def _grants(query: Select[Any], actor: Actor, active: bool) -> Select[Any]:
    if active:
        query = query.where(grants.c.state == "granted")
    return visible_to(query, grants, actor)


def list_requests(
    db: Database, actor: Actor, *, pending: bool = False, limit: int | None = None, offset: int = 0
) -> list[RequestInfo]:
    """Requests the actor may see (its own, or those for its datasets), oldest first,
    without their history: the ``limit`` of them from ``offset`` (all when ``limit`` is
    None)."""
    request = access_requests.c
    query = (
        named(select(access_requests, grants.c.id.label("grant_id")), access_requests)
        .outerjoin(grants, grants.c.request_id == request.id)
        .order_by(request.id)
    )
    with db.connect() as connection:
        rows = connection.execute(_requests(query, actor, pending).limit(limit).offset(offset))
        return [
            request_view(row, row.consumer, f"{row.provider}/{row.dataset}", row.grant_id)
            for row in rows
        ]


def count_requests(db: Database, actor: Actor, *, pending: bool = False) -> int:
    """How many requests :func:`list_requests` lists in all."""
    with db.connect() as connection:
        return count_rows(connection, _requests(select(access_requests.c.id), actor, pending))


def list_grants(
    db: Database, actor: Actor, *, active: bool = False, limit: int | None = None, offset: int = 0
) -> list[GrantInfo]:
    """Grants the actor may see (its own, or those on its datasets), oldest first, without
    their history: the ``limit`` of them from ``offset`` (all when ``limit`` is None)."""
    query = named(select(grants), grants).order_by(grants.c.id)
    with db.connect() as connection:
        rows = connection.execute(_grants(query, actor, active).limit(limit).offset(offset))
        return [
            grant_view(row, row.consumer, f"{row.provider}/{row.dataset}", row.provider)
            for row in rows
        ]


def count_grants(db: Database, actor: Actor, *, active: bool = False) -> int:
    """How many grants :func:`list_grants` lists in all."""
    with db.connect() as connection:
        return count_rows(connection, _grants(select(grants.c.id), actor, active))


def grants_due(db: Database, now: datetime) -> bool:
    """Whether a grant in force has come to the end of its period by ``now``."""
    grant = grants.c
    due = select(grant.id).where(grant.state == "granted", grant.valid_until <= now).limit(1)
    with db.connect() as connection:
        return connection.scalar(due) is not None
