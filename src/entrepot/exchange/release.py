"""Releases: de-identified or DP-synthetic rows, made for one consumer under the provider's rules.

A release is one more kind of operation on the coordinator
(:mod:`entrepot.exchange.coordinator`): :class:`ReleaseRequest` names its dataset,
the contract action ``release-download``, its price (0 ε for an anonymized release, its
ε for a synthetic one, debited from the consumer's grant and the dataset's cap in one
reservation) and the vault operation :class:`~entrepot.vault.MakeRelease`, which makes
the rows where the data is and keeps them in the provider's vault. Its checks, each a
refusal naming its rule, run before any data is read:

- ``release_kind``: the policy's ``release.kinds`` allow this kind;
- ``purpose_rows``: the consumer's grant is for a purpose that allows rows;
- ``k_floor``, ``l_floor``, ``t_ceiling``, ``suppression_limit``: the model asked for is
  at least as strict as the policy's floors;
- ``epsilon_per_release``: a synthetic release spends at most the policy's ε;
- ``release_max_rows``: a synthetic release asks for at most the node's rows;
- ``synthesis_columns``: a synthetic release has a column with a public domain;
- ``pseudonym_column``: a pseudonym is asked for an identifier that names one row or
  the privacy unit, and only in an anonymized release.

An anonymized release is then planned on the data (:meth:`Releases.plan`, through
:meth:`~entrepot.exchange.coordinator.Coordinator.preview`), before a use of the grant is
reserved: no generalization meeting the model is refused under ``suppression_limit``,
and logged like every other refusal.

:class:`Releases` is the door every client uses: the dataset's provider plans, makes and
revokes releases; the consumer they were made for lists them and reads them over the
Delta Sharing protocol (:mod:`entrepot.exchange.sharing`). A release is bound to the
grant it was made under, and read only while that very grant is in force. Making,
revoking and every read are logged in the transparency log (a revocation's reason is
kept with the release, never logged); every read is also metered as a use of the
consumer's grant (:meth:`Releases.read`). Listing needs none of the coordinator: the
local client and :meth:`Releases.all` list through
:func:`entrepot.exchange._release_tables.list_releases`, on Core.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import insert, select, update

from entrepot._numbers import MAX_EPSILON, MIN_EPSILON
from entrepot._text import NOTE_MAX, check_text
from entrepot.clock import utcnow
from entrepot.errors import (
    BudgetExhausted,
    Conflict,
    ContractViolation,
    InvalidInput,
    NotFound,
    PolicyViolation,
    param,
)
from entrepot.exchange._contract_tables import GrantInfo
from entrepot.exchange._release_tables import (
    ACTIVE,
    REVOKED,
    ReleaseInfo,
    ReleaseRecord,
    list_releases,
    releases,
)
from entrepot.exchange.accounts import Accounts, Actor, Role
from entrepot.exchange.coordinator import Coordinator, Cost, Found, Priced
from entrepot.exchange.policies import require_provider
from entrepot.exchange.purposes import purposes
from entrepot.standards.schema import Role as ColumnRole
from entrepot.standards.schema import Standard
from entrepot.transparency import Kind, make_entry
from entrepot.vault import DatasetRef, MakeRelease, Outcome, Released
from entrepot.vault.datasets import dataset_not_found, find_dataset

__all__ = ["ACTION", "ReleaseInfo", "ReleaseRequest", "ReleaseSpec", "Releases"]

ACTION = "release-download"
ANONYMIZED, SYNTHETIC = "anonymized", "synthetic"


@dataclass(frozen=True)
class ReleaseSpec:
    """What a release is asked to be; unset fields take the policy's floors."""

    kind: str = ANONYMIZED
    k: int | None = None
    l: int | None = None  # noqa: E741 - the model's own name
    t: float | None = None
    max_suppression: float | None = None
    sensitive: str | None = None
    epsilon: float | None = None
    rows: int | None = None
    # Identifier columns kept as pseudonyms (keyed hashes under a key of this release).
    pseudonyms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.pseudonyms, str) or not all(isinstance(c, str) for c in self.pseudonyms):
            raise InvalidInput(
                "pseudonyms must be a list of column names",
                hint=f"e.g. {param('pseudonyms')} patient_id",
            )
        object.__setattr__(self, "pseudonyms", tuple(dict.fromkeys(self.pseudonyms)))
        if self.kind not in (ANONYMIZED, SYNTHETIC):
            raise InvalidInput(
                f"unknown release kind {self.kind!r}",
                hint=f"use {ANONYMIZED} or {SYNTHETIC}",
            )
        for name in ("k", "l", "rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidInput(f"{name} must be at least 1, not {value}", hint=f"--{name} 5")
        for name in ("t", "max_suppression"):
            _check_share(name, getattr(self, name))
        if self.sensitive is not None and not (
            isinstance(self.sensitive, str) and self.sensitive.strip()
        ):
            raise InvalidInput(
                "sensitive must name a column",
                hint=f"leave {param('sensitive')} out for the policy's first sensitive column",
            )
        self._check_fields_of_kind()
        if self.kind == SYNTHETIC:
            _check_epsilon(self.epsilon)

    def _check_fields_of_kind(self) -> None:
        """Refuse a field the kind ignores: a release's spec claims only what it holds."""
        foreign = _SYNTHETIC_ONLY if self.kind == ANONYMIZED else _ANONYMIZED_ONLY
        given = [name for name in foreign if getattr(self, name) is not None]
        if given:
            other = SYNTHETIC if self.kind == ANONYMIZED else ANONYMIZED
            raise InvalidInput(
                f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for {other} "
                f"releases, not {self.kind} ones",
                hint=f"leave {', '.join(param(name) for name in given)} out, "
                f"or ask for {'an' if other == ANONYMIZED else 'a'} {other} release",
            )

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None and v != ()}
        if self.pseudonyms:
            out["pseudonyms"] = list(self.pseudonyms)
        return out


# The fields that only one kind of release reads (pseudonyms are refused by rule).
_ANONYMIZED_ONLY = ("k", "l", "t", "max_suppression", "sensitive")
_SYNTHETIC_ONLY = ("epsilon", "rows")


def _check_share(name: str, value: float | None) -> None:
    """A t or a suppression limit: a share, a finite number from 0 to 1."""
    if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
        raise InvalidInput(
            f"{name} must be a number from 0 to 1, not {value!r}",
            hint=f"e.g. {param(name)} 0.1",
        )


def _check_epsilon(epsilon: float | None) -> None:
    """The ε of a synthetic release: finite and at least the ledger's unit."""
    if not (isinstance(epsilon, int | float) and MIN_EPSILON <= epsilon <= MAX_EPSILON):
        given = "" if epsilon is None else f", not {epsilon!r}"
        raise InvalidInput(
            f"a synthetic release needs a finite ε from {MIN_EPSILON:g} to {MAX_EPSILON:g}{given}",
            hint=f"e.g. {param('epsilon')} 2; it is debited from the consumer's grant",
        )


@dataclass(frozen=True)
class ReleaseRequest:
    """One release of one dataset for one consumer, as the coordinator sees it."""

    action: ClassVar[str] = ACTION
    kind: ClassVar[Kind] = Kind.RELEASE
    ref: DatasetRef
    spec: ReleaseSpec
    purpose: str  # the consumer's grant's
    grant_id: int | None  # the consumer's grant, which the release is bound to
    # Releases of this very spec made for this consumer under this grant and revoked so
    # far: revoking one changes the fingerprint of its own repeats, and no other's.
    revision: int
    max_rows: int
    name: str = field(default_factory=lambda: secrets.token_hex(12), compare=False)
    plan_only: bool = False

    @property
    def text(self) -> str:
        return f"release {self.ref} " + json.dumps(self.spec.to_dict(), sort_keys=True)

    def datasets(self) -> tuple[DatasetRef, ...]:
        return (self.ref,)

    def price(self, found: Mapping[DatasetRef, Found]) -> Priced:
        [dataset] = found.values()
        rules = dataset.policy.release
        if self.spec.kind not in rules.kinds:
            allowed = ", ".join(rules.kinds) or "none"
            raise PolicyViolation(
                f"{self.ref}'s policy does not allow {self.spec.kind} releases "
                f"(allowed: {allowed})",
                rule="release_kind",
                hint="its provider lists the kinds in the policy's release.kinds",
            )
        known = purposes().get(self.purpose)
        if known is None or not known.rows:
            with_rows = ", ".join(p.id for p in purposes().values() if p.rows)
            raise PolicyViolation(
                f"the grant's purpose {self.purpose} does not allow row-level data",
                rule="purpose_rows",
                hint=f"releases are made for grants whose purpose allows rows: {with_rows}",
            )
        if self.spec.kind == ANONYMIZED:
            recipe, cost = _anonymization(self.spec, dataset), 0.0
        else:
            recipe, cost = _synthesis(self, dataset), float(self.spec.epsilon or 0)
        operation = MakeRelease(
            self.ref, dataset.version.number, self.name, recipe, plan_only=self.plan_only
        )
        fingerprint = hashlib.sha256(
            "\n".join(
                (
                    self.text,
                    dataset.version.sha256,
                    dataset.policy.digest,
                    # Fingerprints made before counted every revocation of the dataset
                    # for the consumer. With none of this spec revoked, the count reads
                    # as theirs did with none at all: a release made then is recalled,
                    # not made and charged again. With some, it is worded apart, so an
                    # old count of others' revocations never recalls a revoked release.
                    f"revoked {self.revision}" if self.revision else "0",
                    str(self.grant_id),
                )
            ).encode()
        ).digest()
        return Priced(operation, fingerprint, {self.ref: Cost(cost)})

    def body(self, outcome: Outcome) -> bytes:
        assert isinstance(outcome, Released)
        return json.dumps(
            {
                "release": outcome.name,
                "rows": outcome.released_rows,
                "sha256": outcome.sha256,
                "size_bytes": outcome.size_bytes,
                "report": outcome.report,
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()


def _anonymization(spec: ReleaseSpec, found: Found) -> Any:
    from entrepot.privacy.anonymize import Anonymization, Criteria

    rules, standard = found.policy.release, found.standard
    sensitive_columns = rules.sensitive_of(standard)
    k = spec.k if spec.k is not None else rules.k_min
    if k < rules.k_min:
        raise PolicyViolation(
            f"k = {k} is below the policy's floor k_min = {rules.k_min}",
            rule="k_floor",
            hint=f"ask for {param('k')} {rules.k_min} or more",
        )
    sensitive = spec.sensitive or (sensitive_columns[0] if sensitive_columns else None)
    if sensitive is not None and sensitive not in sensitive_columns:
        raise PolicyViolation(
            f"{sensitive!r} is not a sensitive column of the policy "
            f"(its sensitive columns: {', '.join(sensitive_columns) or 'none'})",
            rule="sensitive_column",
            hint="name one of the policy's release.sensitive columns",
        )
    floor = rules.l_min if sensitive is not None else 1
    diversity = spec.l if spec.l is not None else floor
    if diversity < floor:
        raise PolicyViolation(
            f"l = {diversity} is below the policy's floor l_min = {rules.l_min}",
            rule="l_floor",
            hint=f"ask for {param('l')} {rules.l_min} or more",
        )
    t = spec.t if spec.t is not None else rules.t_max
    if t > rules.t_max:
        raise PolicyViolation(
            f"t = {t:g} is above the policy's ceiling t_max = {rules.t_max:g}",
            rule="t_ceiling",
            hint=f"ask for {param('t')} {rules.t_max:g} or less",
        )
    limit = spec.max_suppression if spec.max_suppression is not None else rules.max_suppression
    if limit > rules.max_suppression:
        raise PolicyViolation(
            f"suppressing up to {limit:.1%} of the rows is above the policy's "
            f"{rules.max_suppression:.1%}",
            rule="suppression_limit",
            hint=f"ask for {param('max_suppression')} {rules.max_suppression:g} or less",
        )
    criteria = Criteria(k=k, l=diversity, l_model=rules.l_model, t=t, max_suppression=limit)
    return Anonymization(
        standard,
        rules.quasi_identifiers_of(standard),
        criteria,
        sensitive=sensitive,
        kept_sensitive=sensitive_columns,
        keep=rules.keep,
        pseudonyms=_pseudonyms(spec, standard),
    )


def _pseudonyms(spec: ReleaseSpec, standard: Standard) -> tuple[str, ...]:
    """The identifier columns a release keeps as pseudonyms, checked against the standard.

    Only the privacy unit (whose pseudonym links a unit's rows, which the search then
    counts) and identifiers that name one row (``unique``, or the one-column primary
    key) qualify: any other identifier would link rows of several units in a way the
    model does not count.
    """
    ok = [
        f.name
        for f in standard.fields
        if f.role == ColumnRole.IDENTIFIER
        and (f.name == standard.privacy_unit or f.unique or standard.primary_key == (f.name,))
    ]
    for column in spec.pseudonyms:
        if column not in ok:
            raise PolicyViolation(
                f"{column!r} cannot be kept as a pseudonym: only the privacy unit and "
                "identifiers that name one row can",
                rule="pseudonym_column",
                hint=f"the columns that can: {', '.join(ok) or 'none'}",
            )
    return spec.pseudonyms


def _synthesis(request: ReleaseRequest, found: Found) -> Any:
    from entrepot.privacy.synth import Synthesis, columns_of

    rules, standard, spec = found.policy.release, found.standard, request.spec
    if spec.pseudonyms:
        raise PolicyViolation(
            "a synthetic release has no pseudonyms: its rows are no one's",
            rule="pseudonym_column",
            hint="ask for pseudonyms in an anonymized release",
        )
    epsilon = float(spec.epsilon or 0)
    if epsilon > rules.epsilon_per_release:
        raise PolicyViolation(
            f"ε = {epsilon:g} is above the policy's epsilon_per_release "
            f"({rules.epsilon_per_release:g})",
            rule="epsilon_per_release",
            hint=f"ask for {param('epsilon')} {rules.epsilon_per_release:g} or less",
        )
    rows = spec.rows
    if rows is not None and rows > request.max_rows:
        # A refusal by rule, so the coordinator logs it: the rows asked for and the
        # setting are both public, and nothing of the data is read.
        raise PolicyViolation(
            f"{rows:,} synthetic rows is more than the node allows ({request.max_rows:,}, "
            "its release_max_rows)",
            rule="release_max_rows",
            hint=f"ask for fewer {param('rows')}, or ask the node's operator to raise "
            "ENTREPOT_RELEASE_MAX_ROWS",
        )
    columns = tuple(
        dict.fromkeys((*rules.quasi_identifiers_of(standard), *rules.sensitive_of(standard)))
    )
    if not columns_of(standard, columns)[0]:
        raise PolicyViolation(
            f"no column of {request.ref}'s releases has a public domain to synthesize "
            f"({', '.join(columns) or 'none'})",
            rule="synthesis_columns",
            hint="its provider lists, in the policy's release block, columns with a code "
            "list, a declared range or public bounds",
        )
    return Synthesis(standard, columns, epsilon, rows, max_rows=request.max_rows)


_IDENT = re.compile(r"[0-9]{1,18}")


def parse_ident(ident: str) -> int:
    """The number of a release named ``R-<number>`` (or the number alone)."""
    text = ident.strip().upper().removeprefix("R-")
    if not _IDENT.fullmatch(text):
        raise InvalidInput(f"{ident!r} is not a release", hint="releases are named R-<number>")
    return int(text)


class Releases:
    """Releases on one node: made through its coordinator, kept in its vault."""

    def __init__(self, coordinator: Coordinator, accounts: Accounts) -> None:
        self.coordinator = coordinator
        self.accounts = accounts
        self.node = coordinator.node

    # -- making ----------------------------------------------------------------------

    def plan(self, actor: Actor, dataset: str, consumer: str, spec: ReleaseSpec) -> dict[str, Any]:
        """What an anonymized release would be (generalizations, loss, risk); nothing is
        made, charged or logged as made. Only the dataset's provider may plan one.

        A refusal is logged as a release's is, the search's included: that no
        generalization meets the model is the data's answer, and refused all the same.
        """
        if spec.kind != ANONYMIZED:
            raise InvalidInput(
                "only anonymized releases are planned", hint="a synthetic release spends ε"
            )
        request, target = self._request(actor, dataset, consumer, spec, plan_only=True)
        [found], outcome = self.coordinator.preview(
            target, request, purpose=request.purpose or None
        )
        assert isinstance(outcome, Released)
        return {
            "dataset": str(request.ref),
            "version": found.version.number,
            "consumer": consumer,
            "kind": spec.kind,
            "report": outcome.report,
        }

    def create(self, actor: Actor, dataset: str, consumer: str, spec: ReleaseSpec) -> ReleaseInfo:
        """Make a release for ``consumer`` through the coordinator; a repeat of one already
        made (same spec, version and policy) returns it instead of another.

        An anonymized release is planned first, as :meth:`plan` does: the provider is told
        by rule that no generalization meets its criteria (its own data's answer) before
        a use of the consumer's grant is reserved, rather than charged a failure."""
        if spec.kind == ANONYMIZED:
            self.plan(actor, dataset, consumer, spec)
        request, target = self._request(actor, dataset, consumer, spec)
        done = self.coordinator.run(target, request, purpose=request.purpose or None)
        body = json.loads(done.body)
        [use] = done.uses
        named = select(releases).where(releases.c.name == body["release"])
        with self.node.db.write() as session:
            if session.execute(named).first() is None:
                assert target.org_id is not None
                session.execute(
                    insert(releases).values(
                        name=body["release"],
                        dataset_id=use.dataset_id,
                        version=use.version,
                        consumer_id=target.org_id,
                        kind=spec.kind,
                        state=ACTIVE,
                        spec=spec.to_dict(),
                        report=body["report"],
                        rows=body["rows"],
                        size_bytes=body["size_bytes"],
                        sha256=body["sha256"],
                        # What it was paid: a repeat spends nothing, and this row may
                        # follow a making whose process died before writing it.
                        epsilon=float(spec.epsilon or 0),
                        log_index=done.receipt.index,
                        created_by=actor.name,
                        created_at=utcnow(),
                        grant_id=request.grant_id,
                    )
                )
            record = ReleaseRecord.of(session.execute(named).one())
        return ReleaseInfo(record, str(request.ref), consumer, True, receipt=done.receipt.to_json())

    def _request(
        self,
        actor: Actor,
        dataset: str,
        consumer: str,
        spec: ReleaseSpec,
        *,
        plan_only: bool = False,
    ) -> tuple[ReleaseRequest, Actor]:
        ref = DatasetRef.parse(dataset)
        with self.node.db.read() as session:
            found = find_dataset(session, ref)
            if not (actor.is_local or actor.provider_id == found.provider_id):
                raise dataset_not_found(ref)
            dataset_id = found.id
        target = self.accounts.actor(consumer)
        if target.role != Role.CONSUMER:
            raise InvalidInput(
                f"{consumer} is not a consumer organization",
                hint="releases are made for consumers that hold a grant",
            )
        grant = self._grant(target, ref)
        with self.node.db.read() as session:
            revoked = session.scalars(
                select(releases.c.spec).where(
                    releases.c.dataset_id == dataset_id,
                    releases.c.consumer_id == target.org_id,
                    releases.c.grant_id == (grant.id if grant else None),
                    releases.c.state == REVOKED,
                )
            ).all()
        request = ReleaseRequest(
            ref,
            spec,
            grant.purpose if grant else "",
            grant.id if grant else None,
            sum(kept == spec.to_dict() for kept in revoked),
            self.node.settings.release_max_rows,
            plan_only=plan_only,
        )
        return request, target

    def _grant(self, consumer: Actor, ref: DatasetRef) -> GrantInfo | None:
        """The consumer's grant in force (the coordinator checks the grant itself)."""
        try:
            return self.coordinator.contracts.authorize(consumer, str(ref), ACTION)
        except ContractViolation:
            # Refused again, and logged, by the coordinator's own check.
            return None

    # -- reading ---------------------------------------------------------------------

    def all(self, actor: Actor, *, state: str | None = None) -> list[ReleaseInfo]:
        """Releases the actor may see: a provider's of its datasets, a consumer's its own
        made under its grant in force."""
        now = self.coordinator.contracts.clock()
        return list_releases(self.node.db, actor, state=state, now=now)

    def show(self, actor: Actor, ident: str) -> ReleaseInfo:
        number = parse_ident(ident)
        for info in self.all(actor):
            if info.record.id == number:
                return info
        raise NotFound(f"no release {ident}", hint="see `entrepot release list`")

    def revoke(self, actor: Actor, ident: str, reason: str = "") -> ReleaseInfo:
        """Stop a release at once: it is no longer listed to or readable by its consumer.

        The reason is kept with the release, for its provider and the node's operators;
        the log says only that the release was revoked, and by whom: free text might
        name a person, and the log can never forget.
        """
        check_text(reason, "reason", most=NOTE_MAX)
        info = self.show(actor, ident)
        if not info.full:
            raise NotFound(f"no release {ident}", hint="only its provider revokes a release")
        ref = DatasetRef.parse(info.dataset)
        with self.node.db.read() as session:
            provider_id = find_dataset(session, ref).provider_id
        require_provider(actor, ref, provider_id, "revoke its releases")
        with self.node.db.write() as session:
            # Conditional, so that of two revocations at once one changes the row and
            # stages its entry, in the same commit, and the other is refused.
            changed = session.execute(
                update(releases)
                .where(releases.c.id == info.record.id, releases.c.state == ACTIVE)
                .values(
                    state=REVOKED, revoked_at=utcnow(), revoked_by=actor.name, revoked_reason=reason
                )
                .returning(releases.c.id)
            ).first()
            if changed is None:
                raise Conflict(f"{info.ident} is already revoked", hint="nothing to do")
            self.node.outbox.stage(
                session,
                make_entry(
                    Kind.RELEASE,
                    actor.name,
                    dataset=info.dataset,
                    outcome="revoked",
                    release=info.ident,
                    consumer=info.consumer,
                ),
            )
        self.node.outbox.flush()
        return self.show(actor, ident)

    def readable(self, consumer: Actor, ident: int) -> ReleaseInfo:
        """A release its consumer may read now: active, and the grant it was made under
        still in force.

        Every refusal is the same 404 whatever the cause, so a consumer learns nothing
        of releases made for others.
        """
        for info in self.all(consumer, state=ACTIVE):
            if info.record.id == ident and info.record.consumer_id == consumer.org_id:
                self._in_force(consumer, info)
                return info
        raise NotFound("no such table", hint="list the tables the share holds")

    def shared(self, consumer: Actor) -> list[ReleaseInfo]:
        """The active releases made for ``consumer`` whose grant is in force."""
        out = []
        for info in self.all(consumer, state=ACTIVE):
            if info.record.consumer_id != consumer.org_id:
                continue
            try:
                self._in_force(consumer, info)
            except (ContractViolation, NotFound):
                continue
            out.append(info)
        return out

    def _in_force(self, consumer: Actor, info: ReleaseInfo) -> None:
        """The consumer's grant on the release's dataset is the very grant the release
        was made under, in force and for a purpose that allows rows: a later grant of
        the same consumer, whatever its purpose, reads no release made under an earlier
        one."""
        try:
            grant = self.coordinator.contracts.authorize(consumer, info.record.dataset_id, ACTION)
        except ContractViolation as refused:
            # Listed while uses are spent, so that reading it says so (:meth:`read`);
            # :meth:`all` lists it only while the grant it was made under is in force.
            if refused.details.get("clause") != "count":
                raise NotFound("no such table", hint="its grant is no longer in force") from None
            return
        if grant.id != info.record.grant_id:
            raise NotFound("no such table", hint="it was made under a grant no longer in force")
        known = purposes().get(grant.purpose)
        if known is None or not known.rows:
            raise NotFound("no such table", hint="its grant's purpose does not allow rows")

    def read(self, consumer: Actor, info: ReleaseInfo, *, files: int) -> int:
        """Meter a read of the release as one use of its grant, and log it; the entry's index.

        A read is a use like a query: one ledger row (0 ε, the action
        ``release-download``, priced per use from the grant's terms) reserved and
        completed, so usage and invoices count it (:mod:`.metering`), and one
        ``download`` entry naming that row. A grant whose uses are spent is refused
        (clause ``count``), and the refusal is logged.
        """
        assert consumer.org_id is not None
        ledger = self.coordinator.ledger
        record = info.record
        try:
            reservation = ledger.reserve(
                consumer.org_id,
                record.dataset_id,
                record.version,
                f"download {info.ident}",
                0.0,
                action=ACTION,
                actor=consumer.name,
            )
        except (ContractViolation, BudgetExhausted) as refused:
            named = refused.details
            self.node.log.append(
                make_entry(
                    Kind.DOWNLOAD,
                    consumer.name,
                    dataset=info.dataset,
                    release=info.ident,
                    version=record.version,
                    outcome="refused",
                    refusal=refused.code,
                    rule=named.get("clause") or named.get("budget", ""),
                )
            )
            raise
        ledger.mark_touched(reservation)
        staged = self.coordinator.spend(
            reservation,
            make_entry(
                Kind.DOWNLOAD,
                consumer.name,
                dataset=info.dataset,
                epsilon=0,
                release=info.ident,
                version=record.version,
                files=files,
                outcome="answered",
                reservation=reservation.id,
            ),
        )
        return self.node.outbox.flush_through(staged)
