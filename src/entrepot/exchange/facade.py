"""The composition root: every service of one node, built once from its one ``Settings``.

The API app holds one :class:`Exchange` (``app.state.exchange``); the local CLI, the
Python API and the demo build one over the node they open. A service is made on
first use and kept, so a setting reaches every door the same way, and the
transparency log is wired into each service that changes what the public log states.
The vault is the node's own unless another :class:`~entrepot.vault.Vault` is given: the
coordinator reaches data only through the protocol.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from entrepot.exchange.node import Node
from entrepot.settings import Settings

# Each service's module loads when the service is first used: a command that lists the
# catalog does not pay for the ledger, contracts or metering (nor the query path's
# sqlglot, OpenDP and pandas).
if TYPE_CHECKING:
    from entrepot.exchange.accounts import Accounts, Actor
    from entrepot.exchange.budgets import Budgets
    from entrepot.exchange.catalog import Catalog
    from entrepot.exchange.contracts import Contracts
    from entrepot.exchange.coordinator import Coordinator
    from entrepot.exchange.idempotency import IdempotencyKeys
    from entrepot.exchange.metering import Metering
    from entrepot.exchange.openings import Openings
    from entrepot.exchange.policies import Policies
    from entrepot.exchange.query import Queries
    from entrepot.exchange.reconcile import Reconciliation
    from entrepot.exchange.release import Releases
    from entrepot.exchange.sharing import Sharing
    from entrepot.federation.join import Parts
    from entrepot.federation.peers import Peers
    from entrepot.privacy.ledger import Ledger
    from entrepot.vault import Vault

__all__ = ["Exchange"]


class Exchange:
    """The services of one opened :class:`~entrepot.exchange.node.Node`."""

    def __init__(self, node: Node, *, vault: Vault | None = None) -> None:
        self.node = node
        self._vault = vault

    @property
    def settings(self) -> Settings:
        return self.node.settings

    @cached_property
    def vault(self) -> Vault:
        from entrepot.vault import LocalVault

        return self._vault or LocalVault.of(self.node)

    @cached_property
    def ledger(self) -> Ledger:
        from entrepot.privacy.ledger import Ledger

        return Ledger(self.node.db)

    @cached_property
    def accounts(self) -> Accounts:
        from entrepot.exchange.accounts import Accounts

        return Accounts(self.node.db, self.settings, log=self.node.log)

    @cached_property
    def contracts(self) -> Contracts:
        from entrepot.exchange.contracts import Contracts

        return Contracts(self.node.db, self.settings, log=self.node.log)

    @cached_property
    def policies(self) -> Policies:
        from entrepot.exchange.policies import Policies

        return Policies(self.node)

    @cached_property
    def budgets(self) -> Budgets:
        from entrepot.exchange.budgets import Budgets

        return Budgets(self.node.db, ledger=self.ledger)

    @cached_property
    def metering(self) -> Metering:
        from entrepot.exchange.metering import Metering

        return Metering(self.node.db, self.settings)

    @cached_property
    def coordinator(self) -> Coordinator:
        # The query path (sqlglot, OpenDP, pandas) loads on the first query, not on start-up.
        from entrepot.exchange.coordinator import Coordinator

        return Coordinator(
            self.node,
            vault=self.vault,
            contracts=self.contracts,
            policies=self.policies,
            ledger=self.ledger,
        )

    @cached_property
    def queries(self) -> Queries:
        from entrepot.exchange.query import Queries

        return Queries(self.coordinator, catalog=self._sql_names)

    @cached_property
    def idempotency(self) -> IdempotencyKeys:
        from entrepot.exchange.idempotency import IdempotencyKeys

        return IdempotencyKeys(self.node.db)

    @cached_property
    def releases(self) -> Releases:
        from entrepot.exchange.release import Releases

        return Releases(self.coordinator, self.accounts)

    @cached_property
    def sharing(self) -> Sharing:
        from entrepot.exchange.sharing import Sharing

        return Sharing(
            self.releases,
            secret=self.node.signing_key.encode(),
            ttl_s=self.settings.share_url_ttl_s,
            open_file=self.vault.release_file,
        )

    @cached_property
    def openings(self) -> Openings:
        from entrepot.exchange.openings import Openings

        return Openings(self.node)

    @cached_property
    def peers(self) -> Peers:
        from entrepot.federation.peers import Peers

        return Peers(self.node)

    @cached_property
    def joins(self) -> Parts:
        from entrepot.federation.join import Parts

        return Parts(self)

    def catalog(self, viewer: Actor | None = None) -> Catalog:
        """The catalog as ``viewer`` sees it (content figures of its own datasets only)."""
        from entrepot.exchange.catalog import Catalog

        return Catalog(self.node.db, viewer=viewer, max_results=self.settings.catalog_max_results)

    def _sql_names(self) -> list[str]:
        """The SQL names of the datasets in the public catalog."""
        return [summary.ref.sql_name for summary in self.catalog().datasets()]

    def reconcile(self) -> Reconciliation:
        """What node.db holds against what the transparency log states."""
        from entrepot.exchange.reconcile import reconcile

        return reconcile(self.node.db, self.node.log, self.metering)

    def actor(self, org_slug: str) -> Actor:
        """Act as organization ``org_slug`` (the local CLI's ``--as``), without building
        the accounts' service."""
        from entrepot.exchange._account_tables import organization_actor

        return organization_actor(self.node.db, org_slug)
