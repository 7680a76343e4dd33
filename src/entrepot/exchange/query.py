"""The query coordinator: one private query from SQL text to a signed, logged answer.

The order of the steps is the privacy argument, so it is spelled out here once::

    1. name the dataset the SQL reads                    (text only)
    2. check the consumer's contract (period, purpose, count, action)
    3. check and price the SQL against the policy        (text + policy only;
       a Gaussian δ also against the version's public row count)
    4. return the earlier answer, byte for byte, for a query already paid for
    5. reserve ε against the grant and the dataset cap   (one transaction)
    6. attach the version in a locked engine, mark the reservation touched, run
    7. complete the reservation (metered; never refundable) and keep the answer
    8. log the answer, and sign a receipt with an inclusion proof to a tree head

A failure before step 6 releases the reservation; a failure after it never does (a
refund that depends on what the data did would be a side channel). Every answer and
every refusal is appended to the transparency log. Answers and refusals alike are
padded to the policy's latency floor, so timing does not reveal the data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from entrepot.errors import BudgetExhausted, ContractViolation, EntrepotError, PolicyViolation
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
from entrepot.vault import DatasetRef, LocalVault

__all__ = ["ACTION", "Queries", "QueryResult"]

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


@contextmanager
def _padded(floor_ms: float) -> Iterator[None]:
    """Make the block take at least ``floor_ms``, whether it returns or raises."""
    started = time.monotonic()
    try:
        yield
    finally:
        rest = floor_ms / 1000 - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)


class Queries:
    """Runs consumers' private queries on one node."""

    def __init__(self, node: Node, *, contracts: Contracts | None = None) -> None:
        self.node = node
        self.vault = LocalVault.of(node)
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
    ) -> QueryResult:
        """Answer ``sql`` for ``consumer`` with differential privacy, or refuse with the rule."""
        ref: DatasetRef | None = None
        floor_ms = 0.0
        try:
            ref = DatasetRef.from_sql_name(dataset_of(sql))
            policy = self.policies.get(ref).policy
            floor_ms = policy.latency_floor_ms
            with _padded(floor_ms):
                purpose = purpose or self._purpose(consumer, ref)
                grant = self.contracts.authorize(consumer, str(ref), ACTION, purpose)
                return self._answer(consumer, sql, ref, grant.dataset_id, policy, epsilon, purpose)
        except (PolicyViolation, ContractViolation, BudgetExhausted) as refusal:
            self._log_refusal(consumer, sql, ref, purpose, refusal)
            raise

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

    def _answer(
        self,
        consumer: Actor,
        sql: str,
        ref: DatasetRef,
        dataset_id: int,
        policy: Policy,
        epsilon: float | None,
        purpose: str,
    ) -> QueryResult:
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
        assert consumer.org_id is not None  # authorize() refused consumers without an org
        datasets = (committed_version(self.node.db, version),)
        earlier = self.ledger.recall(consumer.org_id, bytes.fromhex(planned.fingerprint))
        if earlier is not None:
            answer = Answer.from_json(earlier)
            receipt = self._log_answer(consumer, sql, earlier, 0.0, datasets, purpose, True)
            return self._result(
                consumer, answer, receipt, ref, dataset_id, version.number, 0.0, True
            )

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
        answer, rows = self._execute(reservation, ref, version.number, planned)
        body = answer.to_json()
        self.ledger.complete(
            reservation, rows_scanned=rows, answer=(bytes.fromhex(planned.fingerprint), body)
        )
        receipt = self._log_answer(consumer, sql, body, planned.epsilon, datasets, purpose, False)
        return self._result(
            consumer, answer, receipt, ref, dataset_id, version.number, planned.epsilon, False
        )

    def _execute(
        self, reservation: Reservation, ref: DatasetRef, version: int, planned: Plan
    ) -> tuple[Answer, int]:
        touched = False
        try:
            with self.node.engine() as engine:
                attached = self.vault.attach(engine, ref, version=version)
                engine.lock([self.node.path("vaults")])
                self.ledger.mark_touched(reservation)
                touched = True
                return planned.run(engine, attached.view), attached.rows
        except BaseException:
            if not touched:
                self.ledger.release(reservation)
            raise

    def _log_answer(
        self,
        consumer: Actor,
        sql: str,
        body: bytes,
        spent: float,
        datasets: tuple[DatasetVersion, ...],
        purpose: str,
        repeated: bool,
    ) -> Receipt:
        # A fresh commitment for a repeat too: the public must not see two queries are equal.
        opening = commit_query(self.node.db, consumer, sql)
        fields = ReceiptFields.build(
            Kind.QUERY, opening=opening, answer=body, epsilon=spent, datasets=datasets
        )
        outcome = "repeated" if repeated else "answered"
        index = self.node.log.append(fields.entry(consumer.name, purpose=purpose, outcome=outcome))
        return issue_receipt(self.node.log, index, fields)

    def _log_refusal(
        self,
        consumer: Actor,
        sql: str,
        ref: DatasetRef | None,
        purpose: str | None,
        refusal: EntrepotError,
    ) -> None:
        rule = getattr(refusal, "rule", None) or getattr(refusal, "clause", None)
        self.node.log.append(
            make_entry(
                Kind.QUERY,
                consumer.name,
                dataset=str(ref) if ref else None,
                purpose=purpose,
                epsilon=0,
                outcome="refused",
                refusal=refusal.code,
                rule=rule or getattr(refusal, "budget", ""),
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
                if row.dataset_id == dataset_id
            ),
            None,
        )
        return QueryResult(answer, receipt, str(ref), version, spent, repeated, left)
