"""The query coordinator: one private query from SQL text to a signed, logged answer.

The order of the steps is the privacy argument, so it is spelled out here once::

    1. name the dataset the SQL reads                    (text only)
    2. check the consumer's contract (period, purpose, count, action)
    3. check and price the SQL against the policy        (text + policy only)
    4. return the earlier answer, byte for byte, for a query already paid for
    5. reserve ε against the grant and the dataset cap   (one transaction)
    6. ask the vault to run the plan where the data is; it marks the reservation
       touched before it reads anything
    7. complete the reservation (metered; never refundable) and keep the answer
    8. log the answer, and sign a receipt with an inclusion proof to a tree head

A failure before step 6 releases the reservation; a failure after it never does (a
refund that depends on what the data did would be a side channel): it completes the
reservation, is logged with its ε as outcome ``failed`` and answers one
:class:`~entrepot.errors.QueryFailed`, whatever its cause. Every answer, every failure
and every refusal (an unknown dataset and a bad argument included) is appended to the
transparency log. All of them are padded to the policy's latency floor (:class:`Floor`),
so timing does not reveal the data. Steps 1 to 3 read no data: :meth:`Queries.screen`
runs them alone, so the API refuses without waiting for a query process.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

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
from entrepot.privacy import Answer, Plan, Policy, dataset_of, plan
from entrepot.privacy.ledger import Ledger, Reservation
from entrepot.standards import codelist
from entrepot.transparency import (
    DatasetVersion,
    Kind,
    Receipt,
    ReceiptFields,
    issue_receipt,
    make_entry,
)
from entrepot.vault import Aggregate, DatasetRef, LocalVault, Vault, VersionInfo

__all__ = ["ACTION", "Floor", "Queries", "QueryResult"]

ACTION = "aggregate-query"


@dataclass(frozen=True)
class QueryResult:
    """A private answer with what it cost and the receipt that proves it."""

    answer: Answer
    receipt: Receipt
    dataset: str
    version: int
    epsilon_spent: float  # 0 when the answer repeats an earlier one
    repeated: bool
    epsilon_left: float | None

    def to_arrow(self) -> pa.Table:
        return self.answer.to_arrow()

    def to_pandas(self) -> pd.DataFrame:
        return self.answer.to_pandas()

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "epsilon_spent": self.epsilon_spent,
            "epsilon_left": self.epsilon_left,
            "repeated": self.repeated,
            "answer": self.answer.to_dict(),
            "receipt": self.receipt.to_json(),
        }


def _codes(name: str) -> Sequence[str]:
    return codelist(name).codes


@dataclass
class Floor:
    """The latency floor a query is padded to, known once its dataset's policy is read.

    Whoever runs the query pads it: :meth:`Queries.run` by sleeping when it is given no
    floor; the API awaits :meth:`rest_s` instead, so padding never holds a query worker.
    """

    ms: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def rest_s(self) -> float:
        """Seconds still to wait for the answer or refusal to reach the floor."""
        return max(0.0, self.ms / 1000 - (time.monotonic() - self.started))


@dataclass(frozen=True)
class _Screened:
    """What the steps that read no data found: the query is refused by none of them."""

    ref: DatasetRef
    dataset_id: int
    purpose: str
    version: VersionInfo
    planned: Plan


_REFUSALS = (PolicyViolation, ContractViolation, BudgetExhausted, NotFound, InvalidInput)


class Queries:
    """Runs consumers' private queries on one node."""

    def __init__(
        self, node: Node, *, contracts: Contracts | None = None, vault: Vault | None = None
    ) -> None:
        self.node = node
        # The node's own vault unless told otherwise: any Vault answers through the protocol.
        self.vault = vault or LocalVault.of(node)
        self.ledger = Ledger(node.db)
        self.contracts = contracts or Contracts(node.db, node.settings, log=node.log)
        self.policies = Policies(node)

    def run(
        self,
        consumer: Actor,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        floor: Floor | None = None,
    ) -> QueryResult:
        """Answer ``sql`` for ``consumer`` with differential privacy, or refuse with the rule.

        The answer or refusal is padded to the policy's latency floor here, unless the
        caller passes ``floor`` and waits for its :meth:`Floor.rest_s` itself.
        """
        own = floor is None
        floor = floor or Floor()
        try:
            return self._answer(consumer, sql, self._screen(consumer, sql, epsilon, purpose, floor))
        finally:
            if own:
                time.sleep(floor.rest_s())

    def screen(
        self,
        consumer: Actor,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        floor: Floor | None = None,
    ) -> None:
        """Run the steps that read no data (1 to 3) and raise their refusal, logged.

        The API screens a query before it waits for a query process, so a refusal never
        waits behind answers; :meth:`run` then takes every step again.
        """
        self._screen(consumer, sql, epsilon, purpose, floor or Floor())

    def _screen(
        self,
        consumer: Actor,
        sql: str,
        epsilon: float | None,
        purpose: str | None,
        floor: Floor,
    ) -> _Screened:
        ref: DatasetRef | None = None
        try:
            ref = DatasetRef.from_sql_name(dataset_of(sql))
            policy = self._policy(ref)
            floor.ms = policy.latency_floor_ms
            purpose = purpose or self._purpose(consumer, ref)
            grant = self.contracts.authorize(consumer, str(ref), ACTION, purpose)
            version = self.vault.versions(ref)[-1]
            planned = plan(
                sql,
                standard=self.vault.standard(ref),
                policy=policy,
                dataset=ref.sql_name,
                epsilon=epsilon,
                codes=_codes,
                version=version.sha256,
            )
        except _REFUSALS as refusal:
            self._log_refusal(consumer, sql, ref, purpose, refusal)
            raise
        return _Screened(ref, grant.dataset_id, purpose, version, planned)

    def _policy(self, ref: DatasetRef) -> Policy:
        try:
            return self.policies.get(ref).policy
        except NotFound as missing:
            # Logged like the checker's refusals, so probing for names leaves a trace.
            raise NotFound(missing.message, hint=missing.hint, rule="unknown_dataset") from None

    def _purpose(self, consumer: Actor, ref: DatasetRef) -> str:
        """The purpose of the consumer's active grant on ``ref``: the default one to state."""
        for grant in self.contracts.grants(consumer, active=True):
            if grant.dataset == str(ref):
                return grant.purpose
        raise ContractViolation(
            f"{consumer.name} holds no active grant on {ref}",
            clause="grant",
            hint="request access with `entrepot access request`",
        )

    def _answer(self, consumer: Actor, sql: str, screened: _Screened) -> QueryResult:
        ref, dataset_id, purpose = screened.ref, screened.dataset_id, screened.purpose
        version, planned = screened.version, screened.planned
        assert consumer.org_id is not None  # authorize() refused consumers without an org
        datasets = (committed_version(self.node.db, version),)
        earlier = self.ledger.recall(consumer.org_id, bytes.fromhex(planned.fingerprint))
        if earlier is not None:
            answer = Answer.from_json(earlier)
            receipt = self._log_answer(consumer, sql, earlier, 0.0, datasets, purpose, None)
            return self._result(
                consumer, answer, receipt, ref, dataset_id, version.number, 0.0, True
            )

        try:
            reservation = self.ledger.reserve(
                consumer.org_id,
                dataset_id,
                version.number,
                sql,
                planned.epsilon,
                planned.delta,
                action=ACTION,
                actor=consumer.name,
            )
        except (ContractViolation, BudgetExhausted) as refusal:
            self._log_refusal(consumer, sql, ref, purpose, refusal)
            raise
        try:
            answer, rows = self._execute(reservation, ref, version.number, planned)
        except QueryFailed:
            # Spent and used like an answer: billed, and logged with its ε, so that an
            # auditor sees every ε a failure cost.
            self.ledger.complete(reservation)
            self._log_failure(consumer, sql, ref, purpose, planned.epsilon, reservation)
            raise
        body = answer.to_json()
        self.ledger.complete(
            reservation, rows_scanned=rows, answer=(bytes.fromhex(planned.fingerprint), body)
        )
        receipt = self._log_answer(
            consumer, sql, body, planned.epsilon, datasets, purpose, reservation
        )
        return self._result(
            consumer, answer, receipt, ref, dataset_id, version.number, planned.epsilon, False
        )

    def _execute(
        self, reservation: Reservation, ref: DatasetRef, version: int, planned: Plan
    ) -> tuple[Answer, int]:
        touched = False

        def touch() -> None:
            nonlocal touched
            self.ledger.mark_touched(reservation)
            touched = True

        try:
            done = self.vault.run(Aggregate(ref, version, planned), touched=touch)
        except BaseException:
            if not touched:
                self.ledger.release(reservation)
            raise
        return done.answer, done.rows

    def _log_answer(
        self,
        consumer: Actor,
        sql: str,
        body: bytes,
        spent: float,
        datasets: tuple[DatasetVersion, ...],
        purpose: str,
        reservation: Reservation | None,
    ) -> Receipt:
        """Log an answer: a repeat (``reservation`` None) or the use of ``reservation``."""
        # A fresh commitment for a repeat too: the public must not see two queries are equal.
        opening = commit_query(self.node.db, consumer, sql)
        fields = ReceiptFields.build(
            Kind.QUERY, opening=opening, answer=body, epsilon=spent, datasets=datasets
        )
        # The reservation links the entry to its ledger row (`audit verify` checks both).
        link: dict[str, Any] = {} if reservation is None else {"reservation": reservation.id}
        outcome = "repeated" if reservation is None else "answered"
        index = self.node.log.append(
            fields.entry(consumer.name, purpose=purpose, outcome=outcome, **link)
        )
        return issue_receipt(self.node.log, index, fields)

    def _log_failure(
        self,
        consumer: Actor,
        sql: str,
        ref: DatasetRef,
        purpose: str,
        spent: float,
        reservation: Reservation,
    ) -> None:
        self.node.log.append(
            make_entry(
                Kind.QUERY,
                consumer.name,
                dataset=str(ref),
                purpose=purpose,
                epsilon=spent,
                outcome="failed",
                reservation=reservation.id,
                refusal=QueryFailed.code,
                query_commitment=commit_query(self.node.db, consumer, sql).commitment,
            )
        )

    def _log_refusal(
        self,
        consumer: Actor,
        sql: str,
        ref: DatasetRef | None,
        purpose: str | None,
        refusal: EntrepotError,
    ) -> None:
        named = refusal.details
        rule = named.get("rule") or named.get("clause") or named.get("budget", "")
        self.node.log.append(
            make_entry(
                Kind.QUERY,
                consumer.name,
                dataset=str(ref) if ref else None,
                purpose=purpose,
                epsilon=0,
                outcome="refused",
                refusal=refusal.code,
                rule=rule,
                query_commitment=commit_query(self.node.db, consumer, sql).commitment,
            )
        )

    def _result(
        self,
        consumer: Actor,
        answer: Answer,
        receipt: Receipt,
        ref: DatasetRef,
        dataset_id: int,
        version: int,
        spent: float,
        repeated: bool,
    ) -> QueryResult:
        left = next(
            (
                row.epsilon_left
                for row in self.ledger.budgets(consumer_id=consumer.org_id)
                if row.dataset == dataset_id
            ),
            None,
        )
        return QueryResult(answer, receipt, str(ref), version, spent, repeated, left)
