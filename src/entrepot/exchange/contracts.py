"""Access contracts, modelled on ODRL 2.2: requests, grants, their states and checks.

A consumer requests a dataset for a purpose (from the vocabulary shipped in
``purposes.json``), an ε and a period. The dataset's provider grants it, fixing the
permitted actions, purpose, ε budget, maximum uses, validity period, price (per use
and/or per ε) and duties, or refuses it. States::

    request: requested ──► granted | refused
    grant:   granted ──► revoked | expired

Every transition is a ``contract_events`` row (who, when, from, to, why). A grant's
budget is opened in the ledger in the same transaction that creates the grant, and
closed in the one that revokes or expires it, so a reservation can never outlive its
contract. :meth:`Contracts.authorize` is the execution-time check; the ledger re-checks
state, period, count and ε atomically when it reserves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
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

from entrepot.db import Base, Database
from entrepot.errors import Conflict, ContractViolation, Forbidden, InvalidInput, NotFound
from entrepot.exchange.accounts import Actor, Organization, Role
from entrepot.privacy.ledger import close_budget, from_nano, open_budget, to_nano, utcnow
from entrepot.settings import Settings
from entrepot.vault.models import Dataset, Provider
from entrepot.vault.refs import DatasetRef

__all__ = [
    "ACTIONS",
    "AccessRequest",
    "ContractEvent",
    "Contracts",
    "Grant",
    "GrantInfo",
    "Purpose",
    "RequestInfo",
    "Transition",
    "purposes",
]

# What a grant may permit; names follow the exchange's three capabilities.
ACTIONS = ("aggregate-query", "private-join", "release-download")
DUTIES = ("attribution",)


@dataclass(frozen=True)
class Purpose:
    id: str
    label: str
    description: str
    broader: str | None
    dpv: str | None


@cache
def purposes() -> dict[str, Purpose]:
    """The purpose vocabulary, by id."""
    text = resources.files("entrepot.exchange").joinpath("purposes.json").read_text("utf-8")
    return {p["id"]: Purpose(**p) for p in json.loads(text)["purposes"]}


def _purpose(purpose_id: str) -> Purpose:
    known = purposes()
    if purpose_id not in known:
        raise InvalidInput(
            f"unknown purpose {purpose_id!r}",
            hint=f"choose one of: {', '.join(sorted(known))}",
        )
    return known[purpose_id]


def covers(granted: str, used: str) -> bool:
    """A grant for a purpose also covers every narrower purpose."""
    known = purposes()
    current: str | None = used
    while current is not None:
        if current == granted:
            return True
        current = known[current].broader if current in known else None
    return False


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


def _start(day: date) -> datetime:
    return datetime.combine(day, time())


def _end(day: date) -> datetime:
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


def _cents(amount: Decimal | float | str, what: str) -> int:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise InvalidInput(
            f"{what} must be an amount ≥ 0 with at most two decimals, got {amount!r}",
            hint=f"e.g. --{what.replace(' ', '-')} 50 or 12.50",
        )
    return int(value * 100)


def _actions(actions: tuple[str, ...] | list[str]) -> list[str]:
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown or not actions:
        raise InvalidInput(
            f"unknown or no actions: {', '.join(unknown) or '(none)'}",
            hint=f"permit one or more of: {', '.join(ACTIONS)}",
        )
    return sorted(set(actions), key=ACTIONS.index)


def _may_see(actor: Actor, consumer_id: int, provider_id: int) -> bool:
    return (
        actor.administers
        or actor.org_id == consumer_id
        or (actor.provider_id is not None and actor.provider_id == provider_id)
    )


def _decides(actor: Actor, provider_id: int) -> bool:
    """Grants and refusals are the dataset's provider's to make (or the home holder's)."""
    return actor.is_local or (actor.provider_id is not None and actor.provider_id == provider_id)


class Contracts:
    """Requests, grants and the execution-time check of one node."""

    def __init__(self, db: Database, settings: Settings | None = None, clock: Any = utcnow) -> None:
        self.db = db
        self.settings = settings or Settings()
        self.clock = clock

    # -- requests ---------------------------------------------------------------

    def request(
        self,
        actor: Actor,
        dataset: str,
        *,
        purpose: str,
        epsilon: float,
        until: date,
        since: date | None = None,
        actions: tuple[str, ...] = ("aggregate-query",),
        note: str = "",
    ) -> RequestInfo:
        """Ask a dataset's provider for access; the request waits in its inbox."""
        if actor.role != Role.CONSUMER or actor.org_id is None:
            raise Forbidden(
                f"{actor.name} is not a consumer; only consumers request access",
                hint="act as a consumer organization (--as ORG)",
            )
        _purpose(purpose)
        wanted = _actions(actions)
        epsilon_nano = to_nano(epsilon, round_up=False)
        if epsilon_nano <= 0:
            raise InvalidInput("the requested ε must be above 0", hint="e.g. --epsilon 3")
        now = self.clock()
        since = since or now.date()
        if until < since or _end(until) <= now:
            raise InvalidInput(
                f"the period {since} to {until} is empty or over",
                hint="give --until a date from today on",
            )
        with self.db.write() as session:
            target = _dataset(session, dataset)
            pending = session.scalar(
                select(AccessRequest.id).where(
                    AccessRequest.consumer_id == actor.org_id,
                    AccessRequest.dataset_id == target.id,
                    AccessRequest.state == "requested",
                )
            )
            if pending is not None:
                raise Conflict(
                    f"REQ-{pending} for {dataset} is still waiting for the provider",
                    hint=f"wait for the decision: `entrepot access show REQ-{pending}`",
                )
            row = AccessRequest(
                consumer_id=actor.org_id,
                dataset_id=target.id,
                purpose=purpose,
                actions=wanted,
                epsilon_nano=epsilon_nano,
                valid_from=_start(since),
                valid_until=_end(until),
                note=note,
                state="requested",
                created_by=actor.name,
                created_at=now,
            )
            session.add(row)
            session.flush()
            _event(session, row.id, None, None, "requested", actor.name, now)
            return self._request_info(session, row, history=True)

    def requests(self, actor: Actor, *, pending: bool = False) -> list[RequestInfo]:
        """Requests the actor may see: its own, or those for its datasets."""
        with self.db.write() as session:
            self._expire_due(session)
            query = select(AccessRequest).order_by(AccessRequest.id)
            if pending:
                query = query.where(AccessRequest.state == "requested")
            rows = [
                r
                for r in session.scalars(query)
                if _may_see(actor, r.consumer_id, _provider_of(session, r.dataset_id))
            ]
            return [self._request_info(session, r) for r in rows]

    def refuse(self, actor: Actor, request: str, reason: str = "") -> RequestInfo:
        with self.db.write() as session:
            row = self._pending(session, actor, request, "refuse")
            row.state = "refused"
            _event(session, row.id, None, "requested", "refused", actor.name, self.clock(), reason)
            return self._request_info(session, row, history=True)

    def _pending(self, session: Session, actor: Actor, request: str, verb: str) -> AccessRequest:
        row = session.get(AccessRequest, parse_id(request, "REQ"), with_for_update=True)
        provider_id = -1 if row is None else _provider_of(session, row.dataset_id)
        if row is None or not _may_see(actor, row.consumer_id, provider_id):
            raise NotFound(
                f"no access request {request}",
                hint="list requests with `entrepot access list`",
            )
        if not _decides(actor, provider_id):
            raise Forbidden(
                f"{actor.name} may not {verb} {request}: only the dataset's provider decides",
                hint="act as the provider organization (--as ORG)",
            )
        if row.state != "requested":
            raise Conflict(
                f"{request} is already {row.state}",
                hint="a new request is needed for a new decision",
            )
        return row

    # -- grants -----------------------------------------------------------------

    def grant(
        self,
        actor: Actor,
        request: str,
        *,
        epsilon: float | None = None,
        max_queries: int | None = None,
        price_per_query: Decimal | float | str = 0,
        price_per_epsilon: Decimal | float | str = 0,
        actions: tuple[str, ...] | None = None,
        until: date | None = None,
        duties: tuple[str, ...] = DUTIES,
    ) -> GrantInfo:
        """Grant a pending request; what is not given is taken from the request."""
        per_query = _cents(price_per_query, "price per query")
        per_epsilon = _cents(price_per_epsilon, "price per epsilon")
        if max_queries is not None and max_queries < 1:
            raise InvalidInput("--max-queries must be at least 1", hint="or leave it out")
        unknown = [d for d in duties if d not in DUTIES]
        if unknown:
            raise InvalidInput(
                f"unknown duties: {', '.join(unknown)}", hint=f"choose from: {', '.join(DUTIES)}"
            )
        now = self.clock()
        with self.db.write() as session:
            self._expire_due(session)
            row = self._pending(session, actor, request, "grant")
            epsilon_nano = row.epsilon_nano if epsilon is None else to_nano(epsilon, round_up=False)
            if epsilon_nano <= 0:
                raise InvalidInput("a grant's ε must be above 0", hint="e.g. --epsilon 2")
            valid_until = row.valid_until if until is None else _end(until)
            if valid_until <= now:
                raise InvalidInput(
                    f"{request}: the grant's period would be over already",
                    hint="give --until a date from today on",
                )
            active = session.scalar(
                select(Grant.id).where(
                    Grant.consumer_id == row.consumer_id,
                    Grant.dataset_id == row.dataset_id,
                    Grant.state == "granted",
                )
            )
            if active is not None:
                raise Conflict(
                    f"GRANT-{active} already covers this consumer and dataset",
                    hint=f"revoke GRANT-{active} first (`entrepot access revoke GRANT-{active}`)",
                )
            grant = Grant(
                request_id=row.id,
                consumer_id=row.consumer_id,
                dataset_id=row.dataset_id,
                purpose=row.purpose,
                actions=row.actions if actions is None else _actions(actions),
                epsilon_nano=epsilon_nano,
                max_queries=max_queries,
                price_per_query_cents=per_query,
                price_per_epsilon_cents=per_epsilon,
                currency=self.settings.currency,
                duties=list(duties),
                valid_from=row.valid_from,
                valid_until=valid_until,
                state="granted",
                created_by=actor.name,
                created_at=now,
            )
            session.add(grant)
            session.flush()
            row.state = "granted"
            _event(session, row.id, None, "requested", "granted", actor.name, now)
            _event(session, row.id, grant.id, None, "granted", actor.name, now)
            open_budget(
                session,
                grant_id=grant.id,
                consumer_id=grant.consumer_id,
                dataset_id=grant.dataset_id,
                epsilon=from_nano(epsilon_nano),
                max_queries=max_queries,
                price_per_query_cents=per_query,
                price_per_epsilon_cents=per_epsilon,
                valid_from=grant.valid_from,
                valid_until=grant.valid_until,
                default_cap=self.settings.default_dataset_epsilon_cap,
                actor=actor.name,
                now=now,
            )
            return self._grant_info(session, grant, history=True)

    def revoke(self, actor: Actor, grant: str, reason: str = "") -> GrantInfo:
        """End a grant now; its budget closes in the same transaction."""
        with self.db.write() as session:
            self._expire_due(session)
            row = self._visible_grant(session, actor, grant)
            provider_id = _provider_of(session, row.dataset_id)
            if not (_decides(actor, provider_id) or actor.role == Role.OPERATOR):
                raise Forbidden(
                    f"{actor.name} may not revoke {grant}",
                    hint="the dataset's provider or an operator revokes grants",
                )
            if row.state != "granted":
                raise Conflict(f"{grant} is already {row.state}", hint="nothing to revoke")
            row.state = "revoked"
            close_budget(session, row.id, "revoked")
            now = self.clock()
            _event(session, row.request_id, row.id, "granted", "revoked", actor.name, now, reason)
            return self._grant_info(session, row, history=True)

    def grants(self, actor: Actor, *, active: bool = False) -> list[GrantInfo]:
        with self.db.write() as session:
            self._expire_due(session)
            query = select(Grant).order_by(Grant.id)
            if active:
                query = query.where(Grant.state == "granted")
            rows = [
                g
                for g in session.scalars(query)
                if _may_see(actor, g.consumer_id, _provider_of(session, g.dataset_id))
            ]
            return [self._grant_info(session, g) for g in rows]

    def show(self, actor: Actor, ident: str) -> RequestInfo | GrantInfo:
        """A request (``REQ-n``) or grant (``GRANT-n``) with its whole history."""
        with self.db.write() as session:
            self._expire_due(session)
            if ident.strip().upper().startswith("GRANT"):
                return self._grant_info(
                    session, self._visible_grant(session, actor, ident), history=True
                )
            row = session.get(AccessRequest, parse_id(ident, "REQ"))
            if row is None or not _may_see(
                actor, row.consumer_id, _provider_of(session, row.dataset_id)
            ):
                raise NotFound(
                    f"no access request {ident}", hint="list requests with `entrepot access list`"
                )
            return self._request_info(session, row, history=True)

    def odrl(self, actor: Actor, grant: str) -> dict[str, Any]:
        """Grant ``GRANT-n`` as an ODRL 2.2 Agreement (JSON-LD)."""
        from entrepot.exchange.odrl import agreement

        info = self.show(actor, grant if grant.upper().startswith("GRANT") else f"GRANT-{grant}")
        assert isinstance(info, GrantInfo)
        return agreement(info)

    def _visible_grant(self, session: Session, actor: Actor, ident: str) -> Grant:
        row = session.get(Grant, parse_id(ident, "GRANT"))
        if row is None or not _may_see(
            actor, row.consumer_id, _provider_of(session, row.dataset_id)
        ):
            raise NotFound(f"no grant {ident}", hint="list grants with `entrepot access list`")
        return row

    def _expire_due(self, session: Session) -> None:
        """Move grants past their period to ``expired``, dated when they expired."""
        due = session.scalars(
            select(Grant).where(Grant.state == "granted", Grant.valid_until <= self.clock())
        ).all()
        for row in due:
            row.state = "expired"
            close_budget(session, row.id, "expired")
            _event(session, row.request_id, row.id, "granted", "expired", "system", row.valid_until)

    # -- the execution-time check -------------------------------------------------

    def authorize(
        self, consumer: Actor, dataset: str | int, action: str, purpose: str
    ) -> GrantInfo:
        """The grant that lets ``consumer`` do ``action`` on ``dataset`` for ``purpose``.

        Raises :class:`ContractViolation` naming the clause that refuses: ``grant`` (none),
        ``revoked``, ``period``, ``action``, ``purpose`` or ``count``. ε is the ledger's
        to check, atomically, when it reserves.
        """
        from entrepot.privacy.ledger import Budget

        now = self.clock()
        with self.db.read() as session:
            target = (
                session.get(Dataset, dataset)
                if isinstance(dataset, int)
                else _dataset(session, dataset)
            )
            rows = (
                []
                if target is None or consumer.org_id is None
                else session.scalars(
                    select(Grant)
                    .where(Grant.consumer_id == consumer.org_id, Grant.dataset_id == target.id)
                    .order_by(Grant.id.desc())
                ).all()
            )
            current = next((g for g in rows if g.state == "granted"), rows[0] if rows else None)
            ask = "request access with `entrepot access request`"
            if current is None:
                raise ContractViolation(
                    f"{consumer.name} holds no grant on {dataset}", clause="grant", hint=ask
                )
            ref = f"GRANT-{current.id}"
            if current.state == "revoked":
                raise ContractViolation(f"{ref} was revoked", clause="revoked", hint=ask)
            if current.state == "expired" or not current.valid_from <= now < current.valid_until:
                raise ContractViolation(
                    f"{ref} is valid from {current.valid_from:%Y-%m-%d} until "
                    f"{current.valid_until - timedelta(days=1):%Y-%m-%d}, not now",
                    clause="period",
                    hint=ask + " for a new period",
                )
            if action not in current.actions:
                raise ContractViolation(
                    f"{ref} does not permit {action}; it permits {', '.join(current.actions)}",
                    clause="action",
                    hint=ask + f" with --action {action}",
                )
            if not covers(current.purpose, purpose):
                raise ContractViolation(
                    f"{ref} is for the purpose {current.purpose}, not {purpose}",
                    clause="purpose",
                    hint=f"use the data for {current.purpose}, or " + ask + " for this purpose",
                )
            left = session.scalar(
                select(Budget.queries_remaining).where(Budget.grant_id == current.id)
            )
            if left is not None and left < 1:
                raise ContractViolation(
                    f"{ref} allowed {current.max_queries} uses; all are spent",
                    clause="count",
                    hint=ask + " for more uses",
                )
            return self._grant_info(session, current)

    # -- views --------------------------------------------------------------------

    def _request_info(
        self, session: Session, row: AccessRequest, *, history: bool = False
    ) -> RequestInfo:
        consumer = session.get(Organization, row.consumer_id)
        grant_id = session.scalar(select(Grant.id).where(Grant.request_id == row.id))
        return RequestInfo(
            id=row.id,
            consumer=consumer.slug if consumer else "",
            dataset=_dataset_ref(session, row.dataset_id)[0],
            purpose=row.purpose,
            actions=tuple(row.actions),
            epsilon=from_nano(row.epsilon_nano),
            valid_from=row.valid_from.date(),
            valid_until=(row.valid_until - timedelta(days=1)).date(),
            note=row.note,
            state=row.state,
            created_at=row.created_at,
            grant_id=grant_id,
            history=_history(session, ContractEvent.request_id == row.id) if history else (),
        )

    def _grant_info(self, session: Session, row: Grant, *, history: bool = False) -> GrantInfo:
        consumer = session.get(Organization, row.consumer_id)
        ref, provider = _dataset_ref(session, row.dataset_id)
        return GrantInfo(
            id=row.id,
            request_id=row.request_id,
            consumer=consumer.slug if consumer else "",
            consumer_id=row.consumer_id,
            dataset=ref,
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
            valid_until=(row.valid_until - timedelta(days=1)).date(),
            state=row.state,
            created_at=row.created_at,
            history=_history(session, ContractEvent.grant_id == row.id) if history else (),
        )


def _event(
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


def _history(session: Session, where: Any) -> tuple[Transition, ...]:
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


def _dataset(session: Session, text: str) -> Dataset:
    ref = DatasetRef.parse(text)
    found = session.scalar(
        select(Dataset)
        .join(Provider, Provider.id == Dataset.provider_id)
        .where(Provider.slug == ref.provider, Dataset.slug == ref.dataset)
    )
    if found is None:
        raise NotFound(
            f"no dataset {ref} on this node",
            hint="find datasets with `entrepot catalog search`",
        )
    return found


def _provider_of(session: Session, dataset_id: int) -> int:
    return session.scalar(select(Dataset.provider_id).where(Dataset.id == dataset_id)) or -1


def _dataset_ref(session: Session, dataset_id: int) -> tuple[str, str]:
    found = session.execute(
        select(Provider.slug, Dataset.slug)
        .join(Dataset, Dataset.provider_id == Provider.id)
        .where(Dataset.id == dataset_id)
    ).first()
    return ("", "") if found is None else (f"{found[0]}/{found[1]}", found[0])
