"""Private aggregate queries: the first kind of operation the coordinator runs.

:class:`AggregateQuery` says what a query is to the coordinator
(:mod:`entrepot.exchange.coordinator`, which holds the steps and their order): the
dataset its SQL names, the contract action ``aggregate-query``, its price (the SQL
checked and planned against the dataset's policy and standard, from text only), and
the vault operation that runs the plan where the data is. :class:`Queries` is the
door every client uses: SQL in, a :class:`QueryResult` with its receipt out; SQL that
joins two datasets is a private join (:class:`~entrepot.exchange.join.JoinQuery`),
answered in the same shape with both datasets named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa

from entrepot.exchange.accounts import Actor
from entrepot.exchange.coordinator import (
    Coordinator,
    Cost,
    Done,
    Floor,
    Found,
    Owed,
    Partner,
    Priced,
    Request,
)
from entrepot.exchange.join import JoinProgress, JoinQuery
from entrepot.privacy import Answer, dataset_of, plan
from entrepot.privacy.bounds import Removal
from entrepot.privacy.sql.join import is_join
from entrepot.standards import codelist
from entrepot.transparency import Kind, Receipt
from entrepot.vault import Aggregate, Aggregated, DatasetRef, Outcome

__all__ = ["ACTION", "AggregateQuery", "Floor", "Queries", "QueryResult"]

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
    # Every dataset the answer read: its version, and the ε the consumer has left on it.
    datasets: tuple[dict[str, Any], ...] = ()

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
            "datasets": list(self.datasets),
        }


def _codes(name: str) -> Sequence[str]:
    return codelist(name).codes


@dataclass(frozen=True)
class AggregateQuery:
    """A consumer's SQL: one dataset, aggregated with noise, priced by its plan."""

    action: ClassVar[str] = ACTION
    kind: ClassVar[Kind] = Kind.QUERY
    sql: str
    epsilon: float | None = None
    # The SQL names of the public catalog's datasets, read only to word a refusal.
    catalog: Callable[[], Iterable[str]] | None = field(default=None, compare=False)

    @property
    def text(self) -> str:
        return self.sql

    def datasets(self) -> tuple[DatasetRef, ...]:
        return (DatasetRef.from_sql_name(dataset_of(self.sql, catalog=self.catalog)),)

    def price(self, found: Mapping[DatasetRef, Found]) -> Priced:
        [dataset] = found.values()
        version = dataset.version
        published = None
        if version.unit_kept is not None and version.unit_removed is not None:
            published = Removal(version.unit_kept, version.unit_removed, version.unit_removed_scale)
        planned = plan(
            self.sql,
            standard=dataset.standard,
            policy=dataset.policy,
            dataset=dataset.ref.sql_name,
            epsilon=self.epsilon,
            codes=_codes,
            version=version.sha256,
            estimate=version.unit_bound,
            removed=published,
        )
        return Priced(
            Aggregate(dataset.ref, dataset.version.number, planned),
            bytes.fromhex(planned.fingerprint),
            {dataset.ref: Cost(planned.epsilon, planned.delta)},
        )

    def body(self, outcome: Outcome) -> bytes:
        assert isinstance(outcome, Aggregated)
        return outcome.answer.to_json()


class Queries:
    """Consumers' private queries on one node, run by its coordinator."""

    def __init__(
        self, coordinator: Coordinator, *, catalog: Callable[[], Iterable[str]] | None = None
    ) -> None:
        self.coordinator = coordinator
        self.catalog = catalog

    def run(
        self,
        consumer: Actor,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        floor: Floor | None = None,
        progress: JoinProgress | None = None,
        owed: Owed | None = None,
    ) -> QueryResult:
        """Answer ``sql`` for ``consumer`` with differential privacy, or refuse with the rule.

        The answer or refusal is padded to the policy's latency floor here, unless the
        caller passes ``floor`` and waits for its :meth:`Floor.rest_s` itself.
        ``progress(step, done, total)`` follows the steps of a private join. ``owed`` is
        an entry owed to the log with the answer (see :meth:`Coordinator.run`).
        """
        request = self.request(sql, epsilon, progress)
        done = self.coordinator.run(consumer, request, purpose=purpose, floor=floor, owed=owed)
        return self._result(consumer, done)

    def run_with(
        self,
        consumer: Actor,
        request: Request,
        partners: Mapping[DatasetRef, Partner],
        *,
        purpose: str | None = None,
    ) -> QueryResult:
        """Answer ``request`` with ``partners`` taking part for other nodes' datasets."""
        done = self.coordinator.run(consumer, request, purpose=purpose, partners=partners)
        return self._result(consumer, done)

    def screen(
        self,
        consumer: Actor,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        floor: Floor | None = None,
    ) -> None:
        """Run the steps that read no data and raise their refusal, logged."""
        request = self.request(sql, epsilon)
        self.coordinator.screen(consumer, request, purpose=purpose, floor=floor)

    def request(
        self, sql: str, epsilon: float | None = None, progress: JoinProgress | None = None
    ) -> Request:
        """The request ``sql`` makes: a private join when it joins, else a query."""
        if is_join(sql):
            node = self.coordinator.node
            return JoinQuery(
                sql,
                epsilon,
                lambda: node.engine,
                self.catalog,
                progress,
                max_rows=node.settings.psi_max_rows,
            )
        return AggregateQuery(sql, epsilon, self.catalog)

    def _result(self, consumer: Actor, done: Done) -> QueryResult:
        first = done.uses[0]
        assert done.outcome is None or isinstance(done.outcome, Aggregated)
        answer = Answer.from_json(done.body) if done.outcome is None else done.outcome.answer
        budgets = self.coordinator.ledger.budgets(consumer_id=consumer.org_id)
        left = {row.dataset: row.epsilon_left for row in budgets}
        lefts = [left.get(use.dataset_id) for use in done.uses]
        return QueryResult(
            answer,
            done.receipt,
            " JOIN ".join(str(use.ref) for use in done.uses),
            first.version,
            done.epsilon_spent,
            done.repeated,
            None if None in lefts else min(x for x in lefts if x is not None),
            tuple(
                {"dataset": str(use.ref), "version": use.version, "epsilon_left": eps}
                for use, eps in zip(done.uses, lefts, strict=True)
            ),
        )
