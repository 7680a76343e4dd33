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

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from entrepot._numbers import MAX_COUNT
from entrepot._text import NOTE_MAX, check_text
from entrepot.clock import utcnow
from entrepot.db import Database
from entrepot.errors import Conflict, ContractViolation, Forbidden, InvalidInput, NotFound, param
from entrepot.exchange import _contract_tables
from entrepot.exchange._contract_models import (
    ACTIONS,
    DUTIES,
    AccessRequest,
    ContractEvent,
    Grant,
    check_actions,
    decides,
    end_of,
    history_of,
    may_see,
    parse_id,
    provider_of,
    record_event,
    start_of,
    to_cents,
)
from entrepot.exchange._contract_tables import (
    GrantInfo,
    RequestInfo,
    Transition,
    grant_view,
    grants_due,
    request_view,
)
from entrepot.exchange.accounts import Actor, Organization, Role, raced
from entrepot.exchange.odrl import agreement
from entrepot.exchange.outbox import Outbox
from entrepot.exchange.purposes import Purpose, check_purpose, covers, purposes
from entrepot.privacy.ledger import close_budget, from_nano, open_budget, to_nano
from entrepot.settings import Settings
from entrepot.transparency import TransparencyLog
from entrepot.transparency.entries import SYSTEM_ACTOR, Kind, make_entry
from entrepot.vault.datasets import dataset_ref, find_dataset
from entrepot.vault.models import Dataset
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
    "covers",
    "parse_id",
    "purposes",
]


class Contracts:
    """Requests, grants and the execution-time check of one node."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        log: TransparencyLog,
        clock: Any = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.outbox = Outbox(db, log, fault_point=settings.fault_point)

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
                hint=f"act as a consumer organization ({param('as')} ORG)",
            )
        wanted, epsilon_nano, since = self.check_terms(
            purpose=purpose, epsilon=epsilon, until=until, since=since, actions=actions, note=note
        )
        now = self.clock()
        with self.db.write() as session:
            target = find_dataset(session, dataset)
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
                valid_from=start_of(since),
                valid_until=end_of(until),
                note=note,
                state="requested",
                created_by=actor.name,
                created_at=now,
            )
            session.add(row)
            session.flush()
            record_event(session, row.id, None, None, "requested", actor.name, now)
            info = self._request_info(session, row, history=True)
        return info

    def check_terms(
        self,
        *,
        purpose: str,
        epsilon: float,
        until: date,
        since: date | None,
        actions: tuple[str, ...],
        note: str,
    ) -> tuple[list[str], int, date]:
        """A request's terms checked, whoever asks: its actions, its ε in nano and the
        first day of its period (today when ``since`` is None)."""
        check_purpose(purpose)
        check_text(note, "note", most=NOTE_MAX, multiline=True)
        wanted = check_actions(actions)
        epsilon_nano = to_nano(epsilon, round_up=False)
        if epsilon_nano <= 0:
            raise InvalidInput("the requested ε must be above 0", hint=f"e.g. {param('epsilon')} 3")
        now = self.clock()
        since = since or now.date()
        if until < since or end_of(until) <= now:
            raise InvalidInput(
                f"the period {since} to {until} is empty or over",
                hint=f"give {param('until')} a date from today on",
            )
        return wanted, epsilon_nano, since

    def requests(
        self, actor: Actor, *, pending: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[RequestInfo]:
        """Requests the actor may see (its own, or those for its datasets), oldest first:
        the ``limit`` of them from ``offset`` (all when ``limit`` is None)."""
        self.expire_due()
        return _contract_tables.list_requests(
            self.db, actor, pending=pending, limit=limit, offset=offset
        )

    def count_requests(self, actor: Actor, *, pending: bool = False) -> int:
        """How many requests :meth:`requests` lists in all."""
        return _contract_tables.count_requests(self.db, actor, pending=pending)

    def refuse(self, actor: Actor, request: str, reason: str = "") -> RequestInfo:
        check_text(reason, "reason", most=NOTE_MAX)
        with self.db.write() as session:
            row = self._pending(session, actor, request, "refuse")
            row.state = "refused"
            record_event(
                session, row.id, None, "requested", "refused", actor.name, self.clock(), reason
            )
            info = self._request_info(session, row, history=True)
        return info

    def _pending(self, session: Session, actor: Actor, request: str, verb: str) -> AccessRequest:
        row = session.get(AccessRequest, parse_id(request, "REQ"), with_for_update=True)
        provider_id = -1 if row is None else provider_of(session, row.dataset_id)
        if row is None or not may_see(actor, row.consumer_id, provider_id):
            raise NotFound(
                f"no access request {request}",
                hint="list requests with `entrepot access list`",
            )
        if not decides(actor, provider_id):
            raise Forbidden(
                f"{actor.name} may not {verb} {request}: only the dataset's provider decides",
                hint=f"act as the provider organization ({param('as')} ORG)",
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
        per_query = to_cents(price_per_query, "price per query")
        per_epsilon = to_cents(price_per_epsilon, "price per epsilon")
        if max_queries is not None and not 1 <= max_queries <= MAX_COUNT:
            raise InvalidInput(
                f"{param('max_queries')} must be from 1 to {MAX_COUNT:,}",
                hint="or leave it out: the uses are then not counted",
            )
        unknown = [d for d in duties if d not in DUTIES]
        if unknown:
            raise InvalidInput(
                f"unknown duties: {', '.join(unknown)}", hint=f"choose from: {', '.join(DUTIES)}"
            )
        self.expire_due()
        now = self.clock()
        with (
            raced(f"{request}: a grant for this consumer and dataset was made meanwhile"),
            self.db.write() as session,
        ):
            row = self._pending(session, actor, request, "grant")
            epsilon_nano = row.epsilon_nano if epsilon is None else to_nano(epsilon, round_up=False)
            if epsilon_nano <= 0:
                raise InvalidInput("a grant's ε must be above 0", hint=f"e.g. {param('epsilon')} 2")
            valid_until = row.valid_until if until is None else end_of(until)
            if valid_until <= now:
                raise InvalidInput(
                    f"{request}: the grant's period would be over already",
                    hint=f"give {param('until')} a date from today on",
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
                actions=row.actions if actions is None else check_actions(actions),
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
            record_event(session, row.id, None, "requested", "granted", actor.name, now)
            record_event(session, row.id, grant.id, None, "granted", actor.name, now)
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
            granted = self._grant_info(session, grant, history=True)
            self._record(session, actor.name, granted, "granted")
        self._logged()
        return granted

    def revoke(self, actor: Actor, grant: str, reason: str = "") -> GrantInfo:
        """End a grant now; its budget closes in the same transaction."""
        check_text(reason, "reason", most=NOTE_MAX)
        self.expire_due()
        with self.db.write() as session:
            row = self._visible_grant(session, actor, grant)
            provider_id = provider_of(session, row.dataset_id)
            if not (decides(actor, provider_id) or actor.role == Role.OPERATOR):
                raise Forbidden(
                    f"{actor.name} may not revoke {grant}",
                    hint="the dataset's provider or an operator revokes grants",
                )
            if row.state != "granted":
                raise Conflict(f"{grant} is already {row.state}", hint="nothing to revoke")
            row.state = "revoked"
            close_budget(session, row.id, "revoked")
            now = self.clock()
            record_event(
                session, row.request_id, row.id, "granted", "revoked", actor.name, now, reason
            )
            revoked = self._grant_info(session, row, history=True)
            self._record(session, actor.name, revoked, "revoked")
        self._logged()
        return revoked

    def grants(
        self, actor: Actor, *, active: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[GrantInfo]:
        """Grants the actor may see (its own, or those on its datasets), oldest first: the
        ``limit`` of them from ``offset`` (all when ``limit`` is None)."""
        self.expire_due()
        return _contract_tables.list_grants(
            self.db, actor, active=active, limit=limit, offset=offset
        )

    def count_grants(self, actor: Actor, *, active: bool = False) -> int:
        """How many grants :meth:`grants` lists in all."""
        return _contract_tables.count_grants(self.db, actor, active=active)

    def show(self, actor: Actor, ident: str) -> RequestInfo | GrantInfo:
        """A request (``REQ-n``) or grant (``GRANT-n``) with its whole history."""
        self.expire_due()
        with self.db.read() as session:
            if ident.strip().upper().startswith("GRANT"):
                return self._grant_info(
                    session, self._visible_grant(session, actor, ident), history=True
                )
            row = session.get(AccessRequest, parse_id(ident, "REQ"))
            if row is None or not may_see(
                actor, row.consumer_id, provider_of(session, row.dataset_id)
            ):
                raise NotFound(
                    f"no access request {ident}", hint="list requests with `entrepot access list`"
                )
            return self._request_info(session, row, history=True)

    def odrl(self, actor: Actor, grant: str, *, base_url: str | None = None) -> dict[str, Any]:
        """Grant ``GRANT-n`` as an ODRL 2.2 Agreement (JSON-LD); its IRIs start with
        ``base_url`` (default: where the node is published), as the DCAT catalog's do."""
        info = self.show(actor, grant if grant.upper().startswith("GRANT") else f"GRANT-{grant}")
        assert isinstance(info, GrantInfo)
        return agreement(info, base_url=base_url or self.settings.base_url)

    def _visible_grant(self, session: Session, actor: Actor, ident: str) -> Grant:
        row = session.get(Grant, parse_id(ident, "GRANT"))
        if row is None or not may_see(actor, row.consumer_id, provider_of(session, row.dataset_id)):
            raise NotFound(f"no grant {ident}", hint="list grants with `entrepot access list`")
        return row

    def expire_due(self) -> None:
        """Expire grants past their period; a read first, so most calls write nothing."""
        if not grants_due(self.db, self.clock()):
            return
        with self.db.write() as session:
            rows = session.scalars(
                select(Grant).where(Grant.state == "granted", Grant.valid_until <= self.clock())
            ).all()
            for row in rows:
                row.state = "expired"
                close_budget(session, row.id, "expired")
                record_event(
                    session,
                    row.request_id,
                    row.id,
                    "granted",
                    "expired",
                    SYSTEM_ACTOR,
                    row.valid_until,
                )
                self._record(session, SYSTEM_ACTOR, self._grant_info(session, row), "expired")
        self._logged()

    def _record(self, session: Session, actor: str, info: GrantInfo, change: str) -> None:
        """Stage a grant's change for the public log, in the transaction that makes it.

        The public sees what accountability needs: that a grant exists, who holds it,
        on which dataset, for which purpose and what it allows (actions, ε, uses,
        period). Requests and refusals, prices, duties and free-text reasons stay in
        the contract's history, for its parties and the node's auditors: a request
        gives no access, and the log is permanent (see docs/transparency.md).
        """
        terms: dict[str, Any] = {
            "consumer": info.consumer,
            "change": change,
            "grant": info.ref,
            "actions": list(info.actions),
            "max_queries": info.max_queries,
            "valid_from": info.valid_from.isoformat(),
            "valid_until": info.valid_until.isoformat(),
        }
        self.outbox.stage(
            session,
            make_entry(
                Kind.GRANT,
                actor,
                dataset=info.dataset,
                purpose=info.purpose,
                epsilon=str(info.epsilon),
                time=self.clock().replace(tzinfo=UTC),
                **terms,
            ),
        )

    def _logged(self) -> None:
        """After a commit: append the staged entries to the log."""
        self.outbox.flush()

    # -- the execution-time check -------------------------------------------------

    def authorize_all(
        self,
        consumer: Actor,
        datasets: Sequence[DatasetRef],
        action: str,
        purpose: str | None = None,
    ) -> dict[DatasetRef, GrantInfo]:
        """:meth:`authorize` on each of ``datasets``, in order, for one purpose: the one
        stated, else that of the grant on the first dataset."""
        grants: dict[DatasetRef, GrantInfo] = {}
        for ref in datasets:
            grants[ref] = self.authorize(consumer, str(ref), action, purpose)
            purpose = purpose or grants[ref].purpose
        return grants

    def authorize(
        self, consumer: Actor, dataset: str | int, action: str, purpose: str | None = None
    ) -> GrantInfo:
        """The grant that lets ``consumer`` do ``action`` on ``dataset`` for ``purpose``
        (by default, the grant's own purpose).

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
                else find_dataset(session, dataset)
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
                    hint=ask + f" with {param('actions')} {action}",
                )
            if purpose is not None and not covers(current.purpose, purpose):
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
        ref = dataset_ref(session, row.dataset_id)[0]
        info = request_view(row, consumer.slug if consumer else "", ref, grant_id)
        if not history:
            return info
        return replace(info, history=history_of(session, ContractEvent.request_id == row.id))

    def _grant_info(self, session: Session, row: Grant, *, history: bool = False) -> GrantInfo:
        consumer = session.get(Organization, row.consumer_id)
        ref, provider = dataset_ref(session, row.dataset_id)
        info = grant_view(row, consumer.slug if consumer else "", ref, provider)
        if not history:
            return info
        return replace(info, history=history_of(session, ContractEvent.grant_id == row.id))
