"""The one client interface: every operation a person or a program asks of a node.

:class:`Client` is implemented in-process (:class:`~entrepot.client.local.LocalClient`,
on the node's services, acting as one organization) and over HTTP
(:class:`~entrepot.client.http.HttpClient`, acting as a token's account). Every method
returns the JSON value the HTTP API answers, so the CLI, the portal and a notebook
render either alike; the API's routes produce their bodies through the local client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from entrepot.transparency.heads import TreeHead

__all__ = ["POLICY_DOCUMENT", "Advance", "Client", "Progress", "Standards"]

# Progress of a step of a publish or a private join: (step, done, total).
Advance = Callable[[str, int, int], None]
# Entries verified so far.
Progress = Callable[[int], None]
# How a refusal names a policy document not read from a file.
POLICY_DOCUMENT = "policy document"


class Standards(Protocol):
    """The standards and code lists a node publishes in (shipped with the package)."""

    def standards(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """The ``limit`` items from ``offset`` (every list takes this window; all by default)."""
        ...

    def standard(self, name: str) -> dict[str, Any]: ...

    def codelist(self, name: str) -> dict[str, Any]: ...


class Client(Standards, Protocol):
    """What a node offers its users; every value is the API's JSON body."""

    # -- who --------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        """The account, role and organization this client acts as."""
        ...

    def whoami(self) -> dict[str, Any]:
        """Where this client works (a server's URL or a node's home) and as whom."""
        ...

    # -- catalog and datasets ------------------------------------------------------
    def catalog_datasets(
        self,
        provider: str | Sequence[str] | None = None,
        *,
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Datasets by reference, of the providers, standards, regions and sectors given
        (any value of each facet given, all facets given; an empty one keeps all)."""
        ...

    def catalog_search(
        self,
        query: str,
        limit: int | None = None,
        *,
        offset: int = 0,
        provider: Sequence[str] = (),
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The best matches of ``query``, kept to the facets as :meth:`catalog_datasets`."""
        ...

    def catalog_search_federated(
        self,
        query: str,
        limit: int = 20,
        *,
        provider: Sequence[str] = (),
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """This node's matches and every peer's, each marked with its ``node``, both kept
        to the facets as :meth:`catalog_datasets`."""
        ...

    def catalog_show(self, dataset: str) -> dict[str, Any]: ...

    def catalog_dcat(self, base_url: str | None = None) -> dict[str, Any]: ...

    def dataset_versions(
        self, dataset: str, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def publish(
        self,
        source: Path,
        *,
        standard: str,
        title: str,
        provider: str | None = None,
        mapping: Path | None = None,
        dataset: str | None = None,
        description: str = "",
        region: Sequence[str] = (),
        sector: str | None = None,
        on_error: str = "reject",
        progress: Advance | None = None,
        force: bool = False,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]: ...

    # -- policies ------------------------------------------------------------------
    def policy(self, dataset: str) -> dict[str, Any]: ...

    def set_policy(
        self, dataset: str, document: str, *, where: str = POLICY_DOCUMENT
    ) -> dict[str, Any]: ...

    # -- access contracts ----------------------------------------------------------
    def purposes(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]: ...

    def request_access(
        self,
        dataset: str,
        *,
        purpose: str,
        epsilon: float,
        until: date,
        since: date | None = None,
        actions: Sequence[str] = ("aggregate-query",),
        note: str = "",
    ) -> dict[str, Any]: ...

    def access_requests(
        self, *, pending: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def access_grants(
        self, *, active: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def access_show(self, ident: str) -> dict[str, Any]:
        """A request (``REQ-n`` or ``n``) or a grant (``GRANT-n``) with its history."""
        ...

    def access_remote(self) -> list[dict[str, Any]]:
        """Your requests and grants on other nodes, each with its ``node``: read-only
        copies, refreshed from each node (``fresh``) or as last read from it."""
        ...

    def grant_access(
        self,
        request: str,
        *,
        epsilon: float | None = None,
        max_queries: int | None = None,
        price_per_query: str = "0",
        price_per_epsilon: str = "0",
        actions: Sequence[str] | None = None,
        until: date | None = None,
    ) -> dict[str, Any]: ...

    def refuse_access(self, request: str, reason: str = "") -> dict[str, Any]: ...

    def revoke_grant(self, grant: str, reason: str = "") -> dict[str, Any]: ...

    def grant_odrl(self, grant: str, base_url: str | None = None) -> dict[str, Any]: ...

    # -- budgets and usage -----------------------------------------------------------
    def budgets(
        self, *, closed: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def set_cap(self, dataset: str, epsilon: float) -> dict[str, Any]: ...

    def usage(self, month: str, party: str | None = None) -> dict[str, Any]: ...

    def usage_csv(self, month: str, party: str | None = None) -> str: ...

    # -- accounts and providers ------------------------------------------------------
    def accounts(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]: ...

    def tokens(
        self, account: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def create_account(
        self, name: str, role: str, *, org: str | None = None, org_name: str | None = None
    ) -> dict[str, Any]: ...

    def issue_token(self, account: str) -> dict[str, Any]: ...

    def revoke_token(self, token_id: str) -> dict[str, Any]: ...

    def providers(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]: ...

    def add_provider(self, slug: str, name: str) -> dict[str, Any]: ...

    # -- queries and openings ------------------------------------------------------
    def query(
        self,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        progress: Advance | None = None,
    ) -> dict[str, Any]:
        """A differentially private answer with its signed receipt; SQL that joins two
        datasets on link keys is a private join. ``progress(step, done, total)`` follows
        a join's steps where it runs in this process."""
        ...

    def join_overlap(
        self,
        left: str,
        right: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        progress: Advance | None = None,
    ) -> dict[str, Any]:
        """How many people two datasets share, noised: a private join on their link keys."""
        ...

    def query_opening(self, index: int) -> dict[str, Any]: ...

    def version_opening(self, dataset: str, version: int) -> dict[str, Any]: ...

    # -- releases and sharing ------------------------------------------------------
    def release_plan(self, dataset: str, consumer: str, **spec: Any) -> dict[str, Any]:
        """What an anonymized release would be (generalization, loss, risk); nothing made."""
        ...

    def release_create(self, dataset: str, consumer: str, **spec: Any) -> dict[str, Any]:
        """Make an anonymized or synthetic release for ``consumer`` (its provider)."""
        ...

    def releases(self, *, state: str | None = None) -> list[dict[str, Any]]: ...

    def release_show(self, release: str) -> dict[str, Any]: ...

    def release_revoke(self, release: str, reason: str = "") -> dict[str, Any]: ...

    def share_profile(self) -> dict[str, Any]:
        """A Delta Sharing profile with a new sharing token of this consumer's account: it
        reads shared tables and nothing else."""
        ...

    # -- the transparency log ------------------------------------------------------
    def audit_entries(
        self,
        *,
        dataset: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """The ``limit`` matching entries from the ``offset``-th, oldest first; without an
        ``offset``, the last ``limit`` of them."""
        ...

    def audit_head(self) -> dict[str, Any]: ...

    def audit_sign_head(self) -> dict[str, Any]: ...

    def audit_inclusion(self, index: int, size: int | None = None) -> dict[str, Any]: ...

    def audit_consistency(self, size1: int, size2: int) -> dict[str, Any]: ...

    def audit_reconciliation(self) -> dict[str, Any]: ...

    def audit_export_heads(self) -> Iterator[bytes]: ...

    def audit_export_entries(self) -> Iterator[bytes]: ...

    def audit_verify(
        self,
        earlier: TreeHead | None = None,
        *,
        full: bool = False,
        node_key: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Check the log extends ``earlier``, and (``full``, or no head) rehash all of it."""
        ...

    def audit_export(self, directory: Path) -> dict[str, Any]: ...

    def close(self) -> None: ...
