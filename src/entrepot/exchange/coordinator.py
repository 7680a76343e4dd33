"""The coordinator: every operation on data, from a consumer's request to a signed, logged outcome.

An operation reads one dataset (an aggregate query) or several (a join); what it is
lives in its :class:`Request`, the order of the steps lives here, once, because the
order is the privacy argument::

    1. name the datasets the request reads                 (its text only)
    2. read each dataset's policy; check the consumer's contract on each
       (period, purpose, count, action)
    3. check and price the request against the policies     (text + public metadata)
    4. return the earlier outcome, byte for byte, for a request already paid for
    5. reserve ε and δ against every grant and every dataset cap   (one transaction:
       every debit or none)
    6. ask the vault to run the operation where the data is; it marks the
       reservation touched before it reads anything
    7. complete the reservation (metered; never refundable) and keep the outcome,
       its log entry owed in the same commit (the log's outbox)
    8. log the outcome, and sign a receipt with an inclusion proof to a tree head

A failure before step 6 releases the reservation; a failure after it never does (a
refund that depends on what the data did would be a side channel): it completes the
reservation, is logged with its ε as outcome ``failed`` and answers one
:class:`~entrepot.errors.QueryFailed`, whatever its cause, a remote vault's included.
Every outcome, every failure and every refusal (an unknown dataset and a bad argument
included) is appended to the transparency log, and all are padded to the strictest
latency floor of the datasets' policies (:class:`Floor`), so timing does not reveal
the data. Steps 1 to 3 read no data: :meth:`Coordinator.screen` runs them alone.

A new kind of operation is one :class:`Request` class (which datasets, which contract
action, how it is priced, what the vault runs) and one vault operation; it takes
every step above without copying any. An operation that needs several vault calls
(a private join: each holder blinds, then reblinds the other's tokens) is priced as a
:class:`Conducted` operation, which step 6 hands the vault to instead.

A dataset held on another node takes part through a :class:`Partner`: that node
takes steps 2, 3 and 5 for its dataset on its own contract, policy and ledger (its
reservation made before any data of either side is read), runs its vault's calls,
and logs and signs its part at step 8; a refusal or failure anywhere aborts its
part, which it releases or spends by the same rule as above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from entrepot.errors import (
    BudgetExhausted,
    ContractViolation,
    EntrepotError,
    InvalidInput,
    NotFound,
    PolicyViolation,
    QueryFailed,
)
from entrepot.exchange.accounts import Actor
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.exchange.openings import commit_query, committed_version
from entrepot.exchange.policies import Policies
from entrepot.privacy import Policy
from entrepot.privacy.ledger import Debit, Ledger, Reservation
from entrepot.standards.schema import Standard
from entrepot.transparency import (
    DatasetVersion,
    Entry,
    Kind,
    Receipt,
    ReceiptFields,
    issue_receipt,
    make_entry,
)
from entrepot.vault import (
    DatasetRef,
    Operation,
    Outcome,
    Progress,
    Published,
    PublishRequest,
    Touched,
    Vault,
    VersionInfo,
)

__all__ = [
    "Conducted",
    "Coordinator",
    "Cost",
    "Done",
    "Floor",
    "Found",
    "Part",
    "Partner",
    "Priced",
    "Request",
    "Use",
]

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from entrepot.exchange.outbox import OutboxRow

_log = logging.getLogger(__name__)

_REFUSALS = (PolicyViolation, ContractViolation, BudgetExhausted, NotFound, InvalidInput)


@dataclass
class Floor:
    """The latency floor an operation is padded to, known once its policies are read.

    Whoever runs the operation pads it: :meth:`Coordinator.run` by sleeping when it is
    given no floor; the API awaits :meth:`rest_s` instead, so padding never holds a
    query worker.
    """

    ms: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def rest_s(self) -> float:
        """Seconds still to wait for the outcome or refusal to reach the floor."""
        return max(0.0, self.ms / 1000 - (time.monotonic() - self.started))


@dataclass(frozen=True)
class Found:
    """A dataset a request reads, as the steps that read no data know it."""

    ref: DatasetRef
    policy: Policy
    standard: Standard
    version: VersionInfo  # the latest: the one the operation reads


@dataclass(frozen=True)
class Cost:
    """What a request spends on one dataset."""

    epsilon: float
    delta: float = 0.0


@runtime_checkable
class Conducted(Protocol):
    """An operation of several vault calls, conducted by the coordinator (a join)."""

    def conduct(self, vault: Vault, *, touched: Touched) -> Outcome:
        """Run every call; ``touched`` before the first that reads data."""
        ...


@dataclass(frozen=True)
class Priced:
    """A request checked against every dataset's policy and priced, before any data is read."""

    operation: Operation | Conducted  # what the vault runs, or what runs over the vault
    fingerprint: bytes  # equal requests on equal versions have equal fingerprints
    costs: Mapping[DatasetRef, Cost]


@runtime_checkable
class Partner(Protocol):
    """The node holding one dataset of an operation, taking part in its steps.

    ``screen`` has that node check the consumer's grant and its own policy, price its
    side with the others' public metadata and reserve on its own ledger, then answers
    its dataset as the steps that read no data know it; ``confirm`` refuses unless it
    priced the request as this node did; ``vault`` runs its vault's calls there;
    ``complete`` has it log the outcome and sign its receipt; ``abort`` has it release
    its reservation, or spend it if its data was read.
    """

    ref: DatasetRef

    @property
    def vault(self) -> Vault: ...

    def screen(self, found: tuple[Found, ...], purpose: str | None) -> Found: ...

    def confirm(self, priced: Priced) -> None: ...

    def committed(self) -> DatasetVersion: ...

    def complete(self, body: bytes, versions: tuple[DatasetVersion, ...]) -> None: ...

    def abort(self) -> None: ...


class Request(Protocol):
    """One kind of operation, as the coordinator sees it."""

    action: ClassVar[str]  # the contract action a grant must allow
    kind: ClassVar[Kind]  # what its log entries and receipts are

    @property
    def text(self) -> str:
        """What was asked, as the log commits to it (the SQL of a query)."""
        ...

    def datasets(self) -> tuple[DatasetRef, ...]:
        """The datasets the request reads, from its text alone."""
        ...

    def price(self, found: Mapping[DatasetRef, Found]) -> Priced:
        """Check the request against public metadata and price it; raise a refusal."""
        ...

    def body(self, outcome: Outcome) -> bytes:
        """The released outcome as the bytes that are logged, stored and answered."""
        ...


@dataclass(frozen=True)
class Use:
    """One dataset an outcome read."""

    ref: DatasetRef
    dataset_id: int
    version: int


@dataclass(frozen=True)
class Done:
    """An operation's outcome: its bytes, what it cost, and the receipt that proves it."""

    body: bytes
    outcome: Outcome | None  # None when the outcome repeats an earlier one
    receipt: Receipt
    uses: tuple[Use, ...]
    epsilon_spent: float  # 0 for a repeat

    @property
    def repeated(self) -> bool:
        return self.outcome is None


# An entry a caller owes the log for an answer, made from the datasets it read and the
# ε it spent on this node (see :meth:`Coordinator.run`).
Owed = Callable[[tuple[DatasetRef, ...], float], Entry]


@dataclass(frozen=True)
class _Screened:
    """What the steps that read no data found: the request is refused by none of them."""

    uses: tuple[Use, ...]
    found: tuple[Found, ...]
    purpose: str
    priced: Priced
    partners: Mapping[DatasetRef, Partner] = field(default_factory=dict)

    def abort(self) -> None:
        for partner in self.partners.values():
            partner.abort()


@dataclass
class Part:
    """This node's part in an operation another node conducts: screened and reserved here.

    Its vault calls come one by one (:meth:`Coordinator.run_part`); it ends with
    :meth:`Coordinator.complete_part` or :meth:`Coordinator.abort_part`.
    """

    consumer: Actor
    request: Request
    screened: _Screened
    reservation: Reservation
    touched: bool = False

    @property
    def operation(self) -> Operation | Conducted:
        return self.screened.priced.operation

    @property
    def fingerprint(self) -> bytes:
        return self.screened.priced.fingerprint

    @property
    def found(self) -> Found:
        [mine] = [f for f in self.screened.found if f.ref not in self.screened.partners]
        return mine


class Routed:
    """The vault of each dataset: this node's, or a partner node's."""

    def __init__(self, vault: Vault, partners: Mapping[DatasetRef, Partner]) -> None:
        self._vault = vault
        self._partners = partners

    def publish(
        self, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
    ) -> Published:
        return self._vault.publish(request, data, progress=progress)

    def versions(self, ref: DatasetRef | str) -> list[VersionInfo]:
        return self._vault.versions(ref)

    def standard(self, ref: DatasetRef | str) -> Standard:
        return self._vault.standard(ref)

    def release_file(self, name: str) -> BinaryIO:
        return self._vault.release_file(name)

    def run(self, operation: Operation, *, touched: Touched) -> Outcome:
        partner = self._partners.get(operation.ref)
        return (partner.vault if partner else self._vault).run(operation, touched=touched)


class Coordinator:
    """Runs consumers' operations on one node's data through its vault."""

    def __init__(
        self,
        node: Node,
        *,
        vault: Vault,
        contracts: Contracts,
        policies: Policies,
        ledger: Ledger,
    ) -> None:
        self.node = node
        self.vault = vault
        self.contracts = contracts
        self.policies = policies
        self.ledger = ledger

    def run(
        self,
        consumer: Actor,
        request: Request,
        *,
        purpose: str | None = None,
        floor: Floor | None = None,
        partners: Mapping[DatasetRef, Partner] | None = None,
        owed: Owed | None = None,
    ) -> Done:
        """Take every step for ``request``: its outcome, or a refusal naming the rule.

        The outcome or refusal is padded to the latency floor here, unless the caller
        passes ``floor`` and waits for its :meth:`Floor.rest_s` itself. ``partners``
        take part for the datasets other nodes hold. An answer's ``owed`` entry goes to
        the log's outbox in the commit that spends for it (a repeat's in one commit of its
        own), so it costs no commit of its own; the caller appends it
        (:meth:`Outbox.replay`) once the answer is out.
        """
        own = floor is None
        floor = floor or Floor()
        # The key every outcome is signed with, loaded (and checked against the node's
        # public key) before anything is reserved: a node that cannot sign spends nothing.
        _ = self.node.signing_key
        try:
            screened = self._screen(consumer, request, purpose, floor, partners or {})
            try:
                return self._complete(consumer, request, screened, owed)
            except BaseException:
                screened.abort()
                raise
        finally:
            if own:
                time.sleep(floor.rest_s())

    def screen(
        self,
        consumer: Actor,
        request: Request,
        *,
        purpose: str | None = None,
        floor: Floor | None = None,
    ) -> None:
        """Run the steps that read no data (1 to 3) and raise their refusal, logged.

        The API screens a query before it waits for a query process, so a refusal never
        waits behind answers; :meth:`run` then takes every step again.
        """
        self._screen(consumer, request, purpose, floor or Floor(), {})

    def preview(
        self, consumer: Actor, request: Request, *, purpose: str | None = None
    ) -> tuple[tuple[Found, ...], Outcome]:
        """Steps 1 to 3, then the vault's operation with nothing reserved, spent or kept:
        what its datasets' provider is shown before the operation is made (a release's
        plan), and the datasets as found. A refusal of any of them, the vault's included
        (a rule only the data settles), is logged as :meth:`run` logs its refusals."""
        screened = self._screen(consumer, request, purpose, Floor(), {})
        operation = screened.priced.operation
        assert not isinstance(operation, Conducted)
        try:
            outcome = self.vault.run(operation, touched=lambda: None)
        except _REFUSALS as refusal:
            refs = tuple(use.ref for use in screened.uses)
            self._log_refusal(consumer, request, refs, screened.purpose, refusal)
            raise
        return screened.found, outcome

    def take_part(
        self,
        consumer: Actor,
        request: Request,
        partners: Mapping[DatasetRef, Partner],
        *,
        purpose: str | None,
    ) -> Part:
        """Steps 1 to 5 for this node's datasets of an operation another node conducts,
        ``partners`` standing for the others; a refusal is logged and raised, and
        nothing is reserved."""
        screened = self._screen(consumer, request, purpose, Floor(), partners)
        return Part(consumer, request, screened, self._reserve(consumer, request, screened))

    def run_part(self, part: Part, operation: Operation) -> Outcome:
        """Step 6 for one vault call of ``part``; its reservation is spent from then on."""

        def touch() -> None:
            if not part.touched:
                self.ledger.mark_touched(part.reservation)
                part.touched = True

        return self.vault.run(operation, touched=touch)

    def complete_part(
        self, part: Part, body: bytes, versions: tuple[DatasetVersion, ...]
    ) -> Receipt:
        """Steps 7 and 8 for ``part``: spent, logged with the answer, and its receipt."""
        spent = _spent(part.screened.priced, part.screened.partners)
        fields, entry = self._outcome(
            part.consumer, part.request, body, spent, versions, part.screened, part.reservation
        )
        staged = self.spend(part.reservation, entry)
        return issue_receipt(self.node.log, self.node.outbox.flush_through(staged), fields)

    def abort_part(self, part: Part) -> None:
        """End ``part`` without an answer: released if its data was not read, else spent
        and logged as failed."""
        if not part.touched:
            self.ledger.release(part.reservation)
            return
        failure = self._failure(part.consumer, part.request, part.screened, part.reservation)
        self.node.outbox.flush_through(self.spend(part.reservation, failure))

    def _screen(
        self,
        consumer: Actor,
        request: Request,
        purpose: str | None,
        floor: Floor,
        partners: Mapping[DatasetRef, Partner],
    ) -> _Screened:
        refs: tuple[DatasetRef, ...] = ()
        screened: list[Partner] = []
        try:
            refs = request.datasets()
            mine = [ref for ref in refs if ref not in partners]
            policies = {ref: self._policy(ref) for ref in mine}
            floor.ms = max(policy.latency_floor_ms for policy in policies.values())
            grants = self.contracts.authorize_all(consumer, mine, request.action, purpose)
            purpose = purpose or grants[mine[0]].purpose
            here = tuple(self.found(ref, policy) for ref, policy in policies.items())
            theirs = {}
            for ref in refs:
                if ref in partners:
                    theirs[ref] = partners[ref].screen(here, purpose)
                    screened.append(partners[ref])
                    floor.ms = max(floor.ms, theirs[ref].policy.latency_floor_ms)
            by_ref = {f.ref: f for f in here} | theirs
            found = tuple(by_ref[ref] for ref in refs)
            priced = request.price(by_ref)
            for partner in screened:
                partner.confirm(priced)
        except _REFUSALS as refusal:
            for partner in screened:
                partner.abort()
            self._log_refusal(consumer, request, refs, purpose, refusal)
            raise
        except BaseException:
            for partner in screened:
                partner.abort()
            raise
        # A partner's dataset is none of this node's: no grant or ledger row here (id 0).
        uses = tuple(
            Use(f.ref, grants[f.ref].dataset_id if f.ref in grants else 0, f.version.number)
            for f in found
        )
        return _Screened(uses, found, purpose, priced, partners)

    def found(self, ref: DatasetRef, policy: Policy | None = None) -> Found:
        """``ref`` as the steps that read no data know it: its policy (``policy`` if
        already read), standard and latest version."""
        policy = policy if policy is not None else self._policy(ref)
        return Found(ref, policy, self.vault.standard(ref), self.vault.versions(ref)[-1])

    def _policy(self, ref: DatasetRef) -> Policy:
        try:
            return self.policies.get(ref).policy
        except NotFound as missing:
            # Logged like the checker's refusals, so probing for names leaves a trace.
            raise NotFound(missing.message, hint=missing.hint, rule="unknown_dataset") from None

    def _complete(
        self, consumer: Actor, request: Request, screened: _Screened, owed: Owed | None
    ) -> Done:
        assert consumer.org_id is not None  # authorize() refused consumers without an org
        refs = tuple(use.ref for use in screened.uses)
        partners = screened.partners
        versions = tuple(
            partners[f.ref].committed()
            if f.ref in partners
            else committed_version(self.node.db, f.version)
            for f in screened.found
        )
        priced = screened.priced
        # With partners, every answer is paid anew: each node spends for its own dataset.
        earlier = None if partners else self.ledger.recall(consumer.org_id, priced.fingerprint)
        if earlier is not None:
            if owed is not None:
                with self.node.db.write() as session:
                    self.node.outbox.stage(session, owed(refs, 0.0))
            fields, entry = self._outcome(consumer, request, earlier, 0.0, versions, screened, None)
            receipt = issue_receipt(self.node.log, self.node.log.append(entry), fields)
            return Done(earlier, None, receipt, screened.uses, 0.0)

        reservation = self._reserve(consumer, request, screened)
        outcome = self._execute(consumer, request, screened, reservation)
        here = _spent(priced, {})
        # A ledger row is shown to its dataset's provider: the rows of an operation over
        # several datasets would tell each provider the others' exact row counts.
        rows = outcome.rows if len(screened.uses) == 1 else None
        try:
            body = request.body(outcome)
            spent = _spent(priced, partners)
            fields, entry = self._outcome(
                consumer, request, body, spent, versions, screened, reservation
            )
            staged = self.spend(
                reservation,
                entry,
                rows_scanned=rows,
                answer=(priced.fingerprint, body),
                owed=None if owed is None else owed(refs, here),
            )
        except Exception as error:
            # The data was read: a failure to write or keep the answer is spent as one.
            raise self._failed(consumer, request, screened, reservation, error) from None
        receipt = issue_receipt(self.node.log, self.node.outbox.flush_through(staged), fields)
        for partner in partners.values():
            partner.complete(body, versions)
        return Done(body, outcome, receipt, screened.uses, here)

    def _reserve(self, consumer: Actor, request: Request, screened: _Screened) -> Reservation:
        assert consumer.org_id is not None
        debits = [
            Debit(use.dataset_id, use.version, cost.epsilon, cost.delta)
            for use in screened.uses
            if use.ref not in screened.partners
            for cost in (screened.priced.costs[use.ref],)
        ]
        first, *also = debits
        try:
            return self.ledger.reserve(
                consumer.org_id,
                first.dataset_id,
                first.version,
                request.text,
                first.epsilon,
                first.delta,
                also=also,
                action=request.action,
                actor=consumer.name,
            )
        except (ContractViolation, BudgetExhausted) as refusal:
            refs = tuple(use.ref for use in screened.uses)
            self._log_refusal(consumer, request, refs, screened.purpose, refusal)
            raise

    def _execute(
        self, consumer: Actor, request: Request, screened: _Screened, reservation: Reservation
    ) -> Outcome:
        """Run the operation in the vault: released if it fails before reading any data,
        spent, logged and answered as one :class:`QueryFailed` if it fails after."""
        touched = False

        def touch() -> None:
            nonlocal touched
            self.ledger.mark_touched(reservation)
            touched = True

        operation = screened.priced.operation
        vault = Routed(self.vault, screened.partners) if screened.partners else self.vault
        try:
            if isinstance(operation, Conducted):
                return operation.conduct(vault, touched=touch)
            return self.vault.run(operation, touched=touch)
        except BaseException as error:
            if not touched:
                self.ledger.release(reservation)
                raise
            if not isinstance(error, Exception):
                raise
            raise self._failed(consumer, request, screened, reservation, error) from None

    def _failed(
        self,
        consumer: Actor,
        request: Request,
        screened: _Screened,
        reservation: Reservation,
        error: Exception,
    ) -> QueryFailed:
        """Spend ``reservation``, whose operation failed after reading data, and the one
        error to raise for it. Spent and used like an outcome: billed, and logged with
        its ε, so that an auditor sees every ε a failure cost. One error for every cause
        and every step that failed (an aggregate's own failure included), since either
        may depend on the data; only a failure that names its rule (a peer's malformed
        page, a fault of its code) says what it is. Called while ``error`` is handled."""
        if not isinstance(error, QueryFailed):
            _log.exception("an operation failed after reading data")
        failure = self._failure(consumer, request, screened, reservation)
        self.node.outbox.flush_through(self.spend(reservation, failure))
        if isinstance(error, QueryFailed) and "rule" in error.details:
            return error
        return QueryFailed(
            "the operation failed after the data was read; its ε is spent",
            hint="the cause is not shown, as it may depend on the data; the operator's "
            "log names it; retrying spends ε again",
        )

    def spend(
        self,
        reservation: Reservation,
        entry: Entry,
        *,
        rows_scanned: int | None = None,
        answer: tuple[bytes, bytes] | None = None,
        owed: Entry | None = None,
    ) -> OutboxRow:
        """Complete ``reservation`` with ``entry`` (and ``owed``) staged in the log's outbox
        in the same commit, so no crash keeps its ε without its entry; the staged row,
        to append with :meth:`Outbox.flush_through` once committed."""
        staged: list[OutboxRow] = []

        def stage(session: Session) -> None:
            # A retried transaction stages again: only the last attempt's row is committed.
            staged[:] = [self.node.outbox.stage(session, entry)]
            if owed is not None:
                self.node.outbox.stage(session, owed)

        self.ledger.complete(reservation, rows_scanned=rows_scanned, answer=answer, also=stage)
        return staged[0]

    def _outcome(
        self,
        consumer: Actor,
        request: Request,
        body: bytes,
        spent: float,
        versions: tuple[DatasetVersion, ...],
        screened: _Screened,
        reservation: Reservation | None,
    ) -> tuple[ReceiptFields, Entry]:
        """The entry of an outcome, a repeat (``reservation`` None) or the use of
        ``reservation``, and the fields its receipt states."""
        # A fresh commitment for a repeat too: the public must not see two requests are equal.
        opening = commit_query(self.node.db, consumer, request.text)
        fields = ReceiptFields.build(
            request.kind, opening=opening, answer=body, epsilon=spent, datasets=versions
        )
        # The reservation links the entry to its ledger rows (`audit verify` checks both).
        link: dict[str, Any] = {} if reservation is None else _link(reservation)
        outcome = "repeated" if reservation is None else "answered"
        return fields, fields.entry(
            consumer.name, purpose=screened.purpose, outcome=outcome, **link
        )

    def _failure(
        self, consumer: Actor, request: Request, screened: _Screened, reservation: Reservation
    ) -> Entry:
        """The entry of an operation that failed after reading data: spent, with its ε."""
        return make_entry(
            request.kind,
            consumer.name,
            purpose=screened.purpose,
            epsilon=_spent(screened.priced, screened.partners),
            outcome="failed",
            refusal=QueryFailed.code,
            **_link(reservation),
            query_commitment=commit_query(self.node.db, consumer, request.text).commitment,
            **_named(tuple(use.ref for use in screened.uses)),
        )

    def _log_refusal(
        self,
        consumer: Actor,
        request: Request,
        refs: tuple[DatasetRef, ...],
        purpose: str | None,
        refusal: EntrepotError,
    ) -> None:
        named = refusal.details
        rule = named.get("rule") or named.get("clause") or named.get("budget", "")
        self.node.log.append(
            make_entry(
                request.kind,
                consumer.name,
                purpose=purpose,
                epsilon=0,
                outcome="refused",
                refusal=refusal.code,
                rule=rule,
                query_commitment=commit_query(self.node.db, consumer, request.text).commitment,
                **_named(refs),
            )
        )


def _named(refs: tuple[DatasetRef, ...]) -> dict[str, Any]:
    """How an entry names the datasets it is about: one as ``dataset``, several as a list."""
    if len(refs) == 1:
        return {"dataset": str(refs[0])}
    if refs:
        return {"datasets": [str(ref) for ref in refs]}
    return {}


def _link(reservation: Reservation) -> dict[str, Any]:
    """How an entry names the ledger rows it spent: its reservation (the first row), and
    every row when it debited several datasets (a join)."""
    rows = reservation.entry_ids
    return {"reservation": reservation.id, **({"debits": list(rows)} if len(rows) > 1 else {})}


def _spent(priced: Priced, partners: Mapping[DatasetRef, Partner]) -> float:
    """The ε ``priced`` spends on this node: on its datasets, not its partners'."""
    return sum(cost.epsilon for ref, cost in priced.costs.items() if ref not in partners)
