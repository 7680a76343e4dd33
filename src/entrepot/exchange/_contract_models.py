"""The rows and views of access contracts: requests, grants, their events.

:mod:`entrepot.exchange.contracts` holds the logic; this module its tables, the frozen
views it returns, and the small helpers both share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from entrepot.db import Base
from entrepot.errors import InvalidInput, param
from entrepot.exchange.accounts import Actor
from entrepot.vault.models import Dataset

__all__ = [
    "ACTIONS",
    "DUTIES",
    "AccessRequest",
    "ContractEvent",
    "Grant",
    "GrantInfo",
    "RequestInfo",
    "Transition",
    "parse_id",
]

ACTIONS = ("aggregate-query", "private-join", "release-download")
DUTIES = ("attribution",)


class AccessRequest(Base):
    __tablename__ = "access_requests"
    __table_args__ = (
        CheckConstraint("state IN ('requested', 'granted', 'refused')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    actions: Mapped[list[str]] = mapped_column(JSON)
    epsilon_nano: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[datetime] = mapped_column(DateTime)
    valid_until: Mapped[datetime] = mapped_column(DateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Grant(Base):
    __tablename__ = "grants"
    __table_args__ = (CheckConstraint("state IN ('granted', 'revoked', 'expired')", name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), unique=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    actions: Mapped[list[str]] = mapped_column(JSON)
    epsilon_nano: Mapped[int] = mapped_column(BigInteger)
    max_queries: Mapped[int | None] = mapped_column(Integer)
    price_per_query_cents: Mapped[int] = mapped_column(BigInteger)
    price_per_epsilon_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    duties: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(DateTime)
    valid_until: Mapped[datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ContractEvent(Base):
    """One state transition of a request or a grant."""

    __tablename__ = "contract_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text, default="")


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
            "at": _iso(self.at),
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
            "created_at": _iso(self.created_at),
            "grant": None if self.grant_id is None else f"GRANT-{self.grant_id}",
            "history": [t.to_dict() for t in self.history],
        }


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
            "created_at": _iso(self.created_at),
            "history": [t.to_dict() for t in self.history],
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def start_of(day: date) -> datetime:
    return datetime.combine(day, time())


def end_of(day: date) -> datetime:
    """A period "until D" includes the whole of day D (UTC)."""
    return datetime.combine(day + timedelta(days=1), time())


def parse_id(text: str, prefix: str) -> int:
    """``REQ-7`` / ``GRANT-3`` (or a bare number) as an integer id."""
    body = text.strip().upper().removeprefix(prefix + "-")
    if not body.isdigit():
        raise InvalidInput(
            f"{text!r} is not a {prefix} id",
            hint=f"write it as {prefix}-<number>, e.g. {prefix}-7",
        )
    return int(body)


def to_cents(amount: Decimal | float | str, what: str) -> int:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise InvalidInput(
            f"{what} must be an amount ≥ 0 with at most two decimals, got {amount!r}",
            hint=f"e.g. {param(what.replace(' ', '_'))} 50 or 12.50",
        )
    return int(value * 100)


def check_actions(actions: tuple[str, ...] | list[str]) -> list[str]:
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown or not actions:
        raise InvalidInput(
            f"unknown or no actions: {', '.join(unknown) or '(none)'}",
            hint=f"permit one or more of: {', '.join(ACTIONS)}",
        )
    return sorted(set(actions), key=ACTIONS.index)


def may_see(actor: Actor, consumer_id: int, provider_id: int) -> bool:
    return (
        actor.administers
        or actor.org_id == consumer_id
        or (actor.provider_id is not None and actor.provider_id == provider_id)
    )


def decides(actor: Actor, provider_id: int) -> bool:
    """Grants and refusals are the dataset's provider's to make (or the home holder's)."""
    return actor.is_local or (actor.provider_id is not None and actor.provider_id == provider_id)


def record_event(
    session: Session,
    request_id: int,
    grant_id: int | None,
    from_state: str | None,
    to_state: str,
    actor: str,
    at: datetime,
    reason: str = "",
) -> None:
    session.add(
        ContractEvent(
            request_id=request_id,
            grant_id=grant_id,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            at=at,
            reason=reason,
        )
    )


def history_of(session: Session, where: Any) -> tuple[Transition, ...]:
    events = session.scalars(select(ContractEvent).where(where).order_by(ContractEvent.id))
    return tuple(
        Transition(
            subject=f"GRANT-{e.grant_id}" if e.grant_id is not None else f"REQ-{e.request_id}",
            from_state=e.from_state,
            to_state=e.to_state,
            actor=e.actor,
            at=e.at,
            reason=e.reason,
        )
        for e in events
    )


def provider_of(session: Session, dataset_id: int) -> int:
    return session.scalar(select(Dataset.provider_id).where(Dataset.id == dataset_id)) or -1
