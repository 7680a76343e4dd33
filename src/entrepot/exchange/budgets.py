"""Budgets as parties see them: ε granted, spent and left per dataset, and the caps.

The numbers come from :mod:`entrepot.privacy.ledger` (spend summed from ledger rows);
this module names datasets and consumers, decides who sees which budget (a consumer
its own, a provider those on its datasets, administrators all) and lets a provider set
its dataset's global ε cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from entrepot.db import Database
from entrepot.errors import Forbidden, NotFound
from entrepot.exchange._contract_models import dataset_ref, decides
from entrepot.exchange.accounts import Actor, Organization, Role
from entrepot.privacy.ledger import BudgetRow, Cap, Ledger, utcnow
from entrepot.vault.datasets import find_dataset
from entrepot.vault.models import Dataset

__all__ = ["BudgetView", "Budgets", "CapView"]


@dataclass(frozen=True)
class CapView:
    dataset: str
    epsilon_cap: float
    epsilon_spent: float
    epsilon_left: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "epsilon_cap": self.epsilon_cap,
            "epsilon_spent": self.epsilon_spent,
            "epsilon_left": self.epsilon_left,
        }


@dataclass(frozen=True)
class BudgetView:
    dataset: str
    consumer: str
    grant: str
    state: str
    epsilon_granted: float
    epsilon_spent: float
    epsilon_left: float
    delta_spent: float
    max_queries: int | None
    queries_used: int
    valid_from: date
    valid_until: date
    cap: CapView | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "consumer": self.consumer,
            "grant": self.grant,
            "state": self.state,
            "epsilon_granted": self.epsilon_granted,
            "epsilon_spent": self.epsilon_spent,
            "epsilon_left": self.epsilon_left,
            "delta_spent": self.delta_spent,
            "max_queries": self.max_queries,
            "queries_used": self.queries_used,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "cap": None if self.cap is None else self.cap.to_dict(),
        }


def _cap_view(ref: str, cap: Cap) -> CapView:
    return CapView(ref, cap.epsilon_cap, cap.epsilon_spent, cap.epsilon_left)


class Budgets:
    """Open budgets and dataset caps, with access control."""

    def __init__(self, db: Database, ledger: Ledger | None = None, clock: Any = utcnow) -> None:
        self.db = db
        self.ledger = ledger or Ledger(db, clock=clock)

    def visible(self, actor: Actor, *, include_closed: bool = False) -> list[BudgetView]:
        """The budgets the actor may see (open ones unless asked), by dataset then consumer.

        Raises :class:`Forbidden` for a role that holds no budgets (an auditor).
        """
        if not actor.administers and actor.role not in (Role.PROVIDER, Role.CONSUMER):
            raise Forbidden(
                f"a {actor.role} account has no budgets",
                hint="budgets belong to consumers; providers see those on their datasets",
            )
        if actor.administers:
            rows = self.ledger.budgets(include_closed=include_closed)
        elif actor.provider_id is not None:
            with self.db.read() as session:
                owned = list(
                    session.scalars(
                        select(Dataset.id).where(Dataset.provider_id == actor.provider_id)
                    )
                )
            rows = self.ledger.budgets(dataset_ids=owned, include_closed=include_closed)
        elif actor.org_id is not None:
            rows = self.ledger.budgets(consumer_id=actor.org_id, include_closed=include_closed)
        else:
            rows = []
        return self._views(rows)

    def _views(self, rows: list[BudgetRow]) -> list[BudgetView]:
        with self.db.read() as session:
            refs = {d: dataset_ref(session, d)[0] for d in {r.dataset_id for r in rows}}
            orgs = dict(
                session.execute(
                    select(Organization.id, Organization.slug).where(
                        Organization.id.in_({r.consumer_id for r in rows})
                    )
                ).all()
            )
        views = [
            BudgetView(
                dataset=refs[r.dataset_id],
                consumer=orgs.get(r.consumer_id, ""),
                grant=f"GRANT-{r.grant_id}",
                state=r.state,
                epsilon_granted=r.epsilon_granted,
                epsilon_spent=r.epsilon_spent,
                epsilon_left=r.epsilon_left,
                delta_spent=r.delta_spent,
                max_queries=r.max_queries,
                queries_used=r.queries_used,
                valid_from=r.valid_from.date(),
                # The ledger keeps the exclusive end (midnight after the last day).
                valid_until=(r.valid_until - timedelta(days=1)).date(),
                cap=None if r.cap is None else _cap_view(refs[r.dataset_id], r.cap),
            )
            for r in rows
        ]
        return sorted(views, key=lambda v: (v.dataset, v.consumer, v.grant))

    def set_cap(self, actor: Actor, dataset: str, epsilon: float) -> CapView:
        """Set the global ε cap of ``dataset``: its provider's decision alone."""
        with self.db.read() as session:
            target = find_dataset(session, dataset)
            dataset_id, provider_id = target.id, target.provider_id
        if not decides(actor, provider_id):
            if actor.administers:
                raise Forbidden(
                    f"{actor.name} may not set the ε cap of {dataset}",
                    hint="only the dataset's provider sets its cap (--as PROVIDER)",
                )
            raise NotFound(
                f"no dataset {dataset} of yours", hint="set caps on your own datasets only"
            )
        return _cap_view(dataset, self.ledger.set_cap(dataset_id, epsilon, actor=actor.name))

    def cap(self, actor: Actor, dataset: str) -> CapView | None:
        """The cap of ``dataset``; anyone who can see the dataset can see its cap."""
        with self.db.read() as session:
            dataset_id = find_dataset(session, dataset).id
        cap = self.ledger.cap(dataset_id)
        return None if cap is None else _cap_view(dataset, cap)
