"""Budgets as parties see them: ε granted, spent and left per dataset, and the caps.

The numbers come from :mod:`entrepot.privacy.ledger` (spend summed from ledger rows);
this module names datasets and consumers, decides who sees which budget (a consumer
its own, a provider those on its datasets, administrators all) and lets a provider set
its dataset's global ε cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import column, select, table

from entrepot._text import with_article
from entrepot.clock import utcnow
from entrepot.db import Database
from entrepot.errors import Forbidden
from entrepot.privacy.ledger import BudgetRecord, Cap, Ledger
from entrepot.roles import Role
from entrepot.vault.datasets import dataset_ref, find_dataset
from entrepot.vault.refs import DatasetRef
from entrepot.vault.tables import datasets

if TYPE_CHECKING:
    from entrepot.exchange.actors import Actor

__all__ = ["Budgets"]

# Organizations, by name only: a budget names its consumer by slug. Their mapped class
# (entrepot.organizations) would load the ORM for a read of two columns.
_organizations = table("organizations", column("id"), column("slug"))


class Budgets:
    """Open budgets and dataset caps, with access control."""

    def __init__(self, db: Database, ledger: Ledger | None = None, clock: Any = utcnow) -> None:
        self.db = db
        self.ledger = ledger or Ledger(db, clock=clock)

    def visible(
        self,
        actor: Actor,
        *,
        include_closed: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[BudgetRecord[str]]:
        """The budgets the actor may see (open ones unless asked), by dataset then grant:
        the ``limit`` of them from ``offset`` (all when ``limit`` is None).

        Raises :class:`Forbidden` for a role that holds no budgets (an auditor).
        """
        scope = self._scope(actor)
        if scope is None:
            return []
        rows = self.ledger.budgets(
            **scope, include_closed=include_closed, limit=limit, offset=offset
        )
        return self._views(rows)

    def count_visible(self, actor: Actor, *, include_closed: bool = False) -> int:
        """How many budgets :meth:`visible` lists in all."""
        scope = self._scope(actor)
        if scope is None:
            return 0
        return self.ledger.count_budgets(**scope, include_closed=include_closed)

    def _scope(self, actor: Actor) -> dict[str, Any] | None:
        """The ledger's filter for the budgets ``actor`` may see; None for none at all."""
        if not actor.administers and actor.role not in (Role.PROVIDER, Role.CONSUMER):
            raise Forbidden(
                f"{with_article(actor.role)} account has no budgets",
                hint="budgets belong to consumers; providers see those on their datasets",
            )
        if actor.administers:
            return {}
        if actor.provider_id is not None:
            with self.db.connect() as connection:
                owned = list(
                    connection.scalars(
                        select(datasets.c.id).where(datasets.c.provider_id == actor.provider_id)
                    )
                )
            return {"dataset_ids": owned}
        if actor.org_id is not None:
            return {"consumer_id": actor.org_id}
        return None

    def _views(self, rows: list[BudgetRecord[int]]) -> list[BudgetRecord[str]]:
        with self.db.connect() as connection:
            refs = {d: dataset_ref(connection, d)[0] for d in {r.dataset for r in rows}}
            orgs = dict(
                connection.execute(
                    select(_organizations.c.id, _organizations.c.slug).where(
                        _organizations.c.id.in_({r.consumer for r in rows})
                    )
                ).all()
            )
        return [
            r.named(refs[r.dataset], orgs.get(r.consumer, ""), f"GRANT-{r.grant}") for r in rows
        ]

    def set_cap(self, actor: Actor, dataset: str, epsilon: float) -> Cap[str]:
        """Set the global ε cap of ``dataset``: its provider's decision alone."""
        from entrepot.exchange.policies import require_provider

        with self.db.read() as session:
            target = find_dataset(session, dataset)
            dataset_id, provider_id, ref = target.id, target.provider_id, target.ref
        require_provider(actor, DatasetRef.parse(ref), provider_id, "set its ε cap")
        return self.ledger.set_cap(dataset_id, epsilon, actor=actor.name).named(dataset)

    def cap(self, actor: Actor, dataset: str) -> Cap[str] | None:
        """The cap of ``dataset``; anyone who can see the dataset can see its cap."""
        with self.db.read() as session:
            dataset_id = find_dataset(session, dataset).id
        cap = self.ledger.cap(dataset_id)
        return None if cap is None else cap.named(dataset)
