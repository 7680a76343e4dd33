"""The mapped classes of access contracts, and the small helpers the contracts' logic
shares.

:mod:`entrepot.exchange.contracts` holds the logic; this module its mapped classes,
built on the Core tables of :mod:`entrepot.exchange._contract_tables` (which holds the
frozen views and the listings), and the helpers both share.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Mapped, Session

from entrepot._numbers import MAX_AMOUNT, MAX_ID
from entrepot.db import Base
from entrepot.errors import InvalidInput, param
from entrepot.exchange import _contract_tables
from entrepot.exchange._contract_tables import Transition
from entrepot.exchange.actors import Actor
from entrepot.vault.models import Dataset

__all__ = [
    "ACTIONS",
    "DUTIES",
    "AccessRequest",
    "ContractEvent",
    "Grant",
    "parse_id",
]

ACTIONS = ("aggregate-query", "private-join", "release-download")
DUTIES = ("attribution",)


class AccessRequest(Base):
    """Mapped on the Core table of :mod:`entrepot.exchange._contract_tables`."""

    __table__ = _contract_tables.access_requests

    id: Mapped[int]
    consumer_id: Mapped[int]
    dataset_id: Mapped[int]
    purpose: Mapped[str]
    actions: Mapped[list[str]]
    epsilon_nano: Mapped[int]
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    note: Mapped[str]
    state: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[datetime]


class Grant(Base):
    """Mapped on the Core table of :mod:`entrepot.exchange._contract_tables`."""

    __table__ = _contract_tables.grants

    id: Mapped[int]
    request_id: Mapped[int]
    consumer_id: Mapped[int]
    dataset_id: Mapped[int]
    purpose: Mapped[str]
    actions: Mapped[list[str]]
    epsilon_nano: Mapped[int]
    max_queries: Mapped[int | None]
    price_per_query_cents: Mapped[int]
    price_per_epsilon_cents: Mapped[int]
    currency: Mapped[str]
    duties: Mapped[list[str]]
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    state: Mapped[str]
    created_by: Mapped[str]
    created_at: Mapped[datetime]


class ContractEvent(Base):
    """One state transition of a request or a grant; mapped on the Core table of
    :mod:`entrepot.exchange._contract_tables`."""

    __table__ = _contract_tables.contract_events

    id: Mapped[int]
    request_id: Mapped[int]
    grant_id: Mapped[int | None]
    from_state: Mapped[str | None]
    to_state: Mapped[str]
    actor: Mapped[str]
    at: Mapped[datetime]
    reason: Mapped[str]


def start_of(day: date) -> datetime:
    return datetime.combine(day, time())


def end_of(day: date) -> datetime:
    """A period "until D" includes the whole of day D (UTC)."""
    if day >= date.max:
        raise InvalidInput(
            f"{day} is past the last day a contract may end",
            hint=f"give {param('until')} a date before {date.max}",
        )
    return datetime.combine(day + timedelta(days=1), time())


def parse_id(text: str, prefix: str) -> int:
    """``REQ-7`` / ``GRANT-3`` (or a bare number) as an integer id."""
    body = text.strip().upper().removeprefix(prefix + "-")
    if not body.isascii() or not body.isdigit() or int(body) > MAX_ID:
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
    if (
        not value.is_finite()
        or value < 0
        or value > Decimal(MAX_AMOUNT)
        or value != value.quantize(Decimal("0.01"))
    ):
        raise InvalidInput(
            f"{what} must be an amount from 0 to {MAX_AMOUNT:,} with at most two decimals, "
            f"got {amount!r}",
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
