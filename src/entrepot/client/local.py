"""The client interface in-process: a node's services, acting as one organization.

Each method calls the services of an :class:`~entrepot.exchange.Exchange` and converts
the result with the wire schemas of :mod:`entrepot.schemas`: it returns the very body
the HTTP API answers, because the API's routes call these methods too. The CLI uses
it when not logged in, a provider's notebook through ``entrepot.connect(home)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from entrepot._text import NOTE_MAX, check_text
from entrepot.client.protocol import POLICY_DOCUMENT, Advance, Progress
from entrepot.client.shipped import ShippedStandards, window
from entrepot.errors import InvalidInput, NotFound, ProofInvalid, param
from entrepot.schemas.paging import page_body

# The services' modules load with the services they hold (entrepot.exchange.facade).
if TYPE_CHECKING:
    from entrepot.exchange.accounts import Actor, IssuedToken
    from entrepot.exchange.catalog import Facets
    from entrepot.exchange.facade import Exchange
    from entrepot.standards import Mapping, Standard
    from entrepot.transparency import TreeHead

__all__ = ["BASE_URL_PATTERN", "LocalClient", "checked_base_url"]

# Where a node is reached, as the ids of its DCAT catalog and ODRL agreements start.
BASE_URL_PATTERN = r"^https?://[^\s]+$"


def _new_token(issued: IssuedToken) -> dict[str, Any]:
    from entrepot.schemas.accounts import NewToken, TokenOut

    return NewToken(token=issued.secret, info=TokenOut.of(issued.info)).model_dump(mode="json")


class LocalClient(ShippedStandards):
    """The client interface on ``exchange``'s services, acting as ``actor``."""

    def __init__(self, exchange: Exchange, actor: Actor) -> None:
        self.exchange = exchange
        self.actor = actor

    def __repr__(self) -> str:
        return f"LocalClient(home={str(self.exchange.node.home)!r}, actor={self.actor.name!r})"

    # -- who ----------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return {"account": self.actor.account, "role": self.actor.role, "org": self.actor.org_slug}

    def whoami(self) -> dict[str, Any]:
        return {
            "server": None,
            "home": str(self.exchange.node.home.resolve()),
            "account": self.actor.account,
            "role": self.actor.role,
            "org": self.actor.org_slug or None,
        }

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
        facets = _facets(provider, standard, region, sector)
        found = self.exchange.catalog(self.actor).datasets(
            facets=facets, limit=limit, offset=offset
        )
        return [s.to_body() for s in found]

    def catalog_datasets_page(
        self,
        provider: str | Sequence[str] | None,
        limit: int,
        offset: int = 0,
        *,
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
    ) -> dict[str, Any]:
        facets = _facets(provider, standard, region, sector)
        catalog = self.exchange.catalog(self.actor)
        found = catalog.datasets(facets=facets, limit=limit, offset=offset)
        items = [s.to_body() for s in found]
        return page_body(items, catalog.count_datasets(facets=facets), limit, offset)

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
        catalog = self.exchange.catalog(self.actor)
        most = catalog.max_results if limit is None else limit
        facets = _facets(provider, standard, region, sector)
        found = catalog.search(query, facets=facets, limit=most, offset=offset)
        return [s.to_body() for s in found]

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
        from entrepot.federation.search import federated_search

        facets = _facets(provider, standard, region, sector)
        return federated_search(self.exchange, self.actor, query, limit, facets)

    def catalog_search_page(
        self,
        query: str,
        limit: int,
        offset: int = 0,
        *,
        provider: Sequence[str] = (),
        standard: Sequence[str] = (),
        region: Sequence[str] = (),
        sector: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A page of the ranked hits: pages are cut from the best ``catalog_max_results``."""
        catalog = self.exchange.catalog(self.actor)
        facets = _facets(provider, standard, region, sector)
        most = min(limit, catalog.max_results)
        found = catalog.search(query, facets=facets, limit=most, offset=offset)
        items = [s.to_body() for s in found]
        return page_body(items, catalog.count_search(query, facets=facets), limit, offset)

    def catalog_show(self, dataset: str) -> dict[str, Any]:
        return self.exchange.catalog(self.actor).show(dataset).to_body()

    def catalog_dcat(self, base_url: str | None = None) -> dict[str, Any]:
        from entrepot.exchange.dcat import export_dcat

        settings = self.exchange.settings
        return export_dcat(
            self.exchange.catalog(self.actor),
            base_url=settings.base_url if base_url is None else checked_base_url(base_url),
            license=settings.license,
        )

    def dataset_versions(
        self, dataset: str, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        found = self.exchange.catalog(self.actor).versions(dataset, limit=limit, offset=offset)
        return [v.to_body() for v in found]

    def dataset_versions_page(self, dataset: str, limit: int, offset: int = 0) -> dict[str, Any]:
        found = self.dataset_versions(dataset, limit=limit, offset=offset)
        total = self.exchange.catalog(self.actor).count_versions(dataset)
        return page_body(found, total, limit, offset)

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
    ) -> dict[str, Any]:
        """Publish in this process: its answer cannot be lost on the way, so
        ``idempotency_key`` (a server's guard against a retried upload) is not needed."""
        from entrepot import standards as shipped
        from entrepot.client.http import open_raw

        if provider is None:
            raise InvalidInput(
                "a local publish needs --provider",
                hint="name the publishing provider, e.g. --provider riverside-hospitals",
            )
        target = shipped.get(standard)
        with open_raw(source) as handle:
            return self.publish_stream(
                handle,
                filename=source.name,
                provider=provider,
                standard=target,
                title=title,
                mapping=shipped.load_mapping(mapping) if mapping is not None else None,
                mapping_text=None if mapping is None else mapping.read_text(encoding="utf-8-sig"),
                dataset=dataset,
                description=description,
                region=region,
                sector=sector,
                on_error=on_error,
                progress=progress,
                force=force,
            )

    def publish_stream(
        self,
        handle: BinaryIO,
        *,
        filename: str,
        provider: str,
        standard: Standard,
        title: str,
        mapping: Mapping | None = None,
        mapping_text: str | None = None,
        dataset: str | None = None,
        description: str = "",
        region: Sequence[str] = (),
        sector: str | None = None,
        on_error: str = "reject",
        progress: Advance | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Publish the raw bytes ``handle`` reads (a file here, or an upload the API spooled)."""
        from entrepot.exchange.catalog import publish_version
        from entrepot.schemas.datasets import PublishedOut
        from entrepot.vault import OnError, PublishRequest

        request = PublishRequest(
            provider=provider,
            standard=standard,
            title=title,
            dataset=dataset,
            description=description,
            regions=tuple(region),
            sector=sector,
            mapping=mapping,
            mapping_text=mapping_text,
            on_error=OnError(on_error),
            filename=filename,
            force=force,
        )
        published = publish_version(self.exchange.node, request, handle, progress=progress)
        return PublishedOut.model_validate(published.to_dict()).model_dump(mode="json")

    # -- policies ------------------------------------------------------------------

    def policy(self, dataset: str) -> dict[str, Any]:
        return self.exchange.policies.get(dataset).to_body()

    def set_policy(
        self, dataset: str, document: str, *, where: str = POLICY_DOCUMENT
    ) -> dict[str, Any]:
        from entrepot.schemas.policies import PolicyOut

        info = self.exchange.policies.set(self.actor, dataset, document, where=where)
        return PolicyOut.of(info).model_dump(mode="json")

    # -- access contracts ----------------------------------------------------------

    def purposes(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        from entrepot.exchange.purposes import purposes
        from entrepot.schemas.access import PurposeOut

        return [
            PurposeOut(
                id=p.id, label=p.label, description=p.description, broader=p.broader, dpv=p.dpv
            ).model_dump(mode="json")
            for p in window(list(purposes().values()), limit, offset)
        ]

    def purposes_page(self, limit: int, offset: int = 0) -> dict[str, Any]:
        """A page of :meth:`purposes` (the vocabulary the package ships)."""
        from entrepot.exchange.purposes import purposes

        found = self.purposes(limit=limit, offset=offset)
        return page_body(found, len(purposes()), limit, offset)

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
    ) -> dict[str, Any]:
        from entrepot.federation.remote import forward_access, remote_dataset

        remote = remote_dataset(dataset)
        if remote is not None:
            return forward_access(
                self.exchange,
                self.actor,
                *remote,
                purpose=purpose,
                epsilon=epsilon,
                until=until,
                since=since,
                actions=tuple(actions),
                note=note,
            )
        info = self.exchange.contracts.request(
            self.actor,
            dataset,
            purpose=purpose,
            epsilon=epsilon,
            until=until,
            since=since,
            actions=tuple(actions),
            note=note,
        )
        return info.to_body()

    def access_requests(
        self, *, pending: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        from entrepot.exchange._contract_tables import list_requests

        self._expire_grants()
        db = self.exchange.node.db
        found = list_requests(db, self.actor, pending=pending, limit=limit, offset=offset)
        return [r.to_body() for r in found]

    def access_requests_page(self, pending: bool, limit: int, offset: int = 0) -> dict[str, Any]:
        from entrepot.exchange._contract_tables import count_requests

        found = self.access_requests(pending=pending, limit=limit, offset=offset)
        total = count_requests(self.exchange.node.db, self.actor, pending=pending)
        return page_body(found, total, limit, offset)

    def access_grants(
        self, *, active: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        from entrepot.exchange._contract_tables import list_grants

        self._expire_grants()
        db = self.exchange.node.db
        found = list_grants(db, self.actor, active=active, limit=limit, offset=offset)
        return [g.to_body() for g in found]

    def access_grants_page(self, active: bool, limit: int, offset: int = 0) -> dict[str, Any]:
        from entrepot.exchange._contract_tables import count_grants

        found = self.access_grants(active=active, limit=limit, offset=offset)
        total = count_grants(self.exchange.node.db, self.actor, active=active)
        return page_body(found, total, limit, offset)

    def _expire_grants(self) -> None:
        """Expire the grants past their period before a listing shows them, as the
        contracts' service does before its own: a read on Core, and the service (with the
        ORM and the log) only when a grant is due."""
        from entrepot.clock import utcnow
        from entrepot.exchange._contract_tables import grants_due

        if grants_due(self.exchange.node.db, utcnow()):
            self.exchange.contracts.expire_due()

    def access_show(self, ident: str) -> dict[str, Any]:
        return self.exchange.contracts.show(self.actor, ident).to_body()

    def node_identity(self) -> dict[str, Any]:
        """This node's name, URL and public key: public, as its peers read them."""
        from entrepot.federation.peers import identity_of

        return identity_of(self.exchange.node).to_dict()

    def federation(self) -> dict[str, Any]:
        """This node's identity and its trusted peers with their last pull and health, as
        ``entrepot node id`` and ``entrepot peer list`` show them: for operators only."""
        from entrepot.errors import Forbidden

        if not self.actor.administers:
            raise Forbidden(
                f"{self.actor.name} may not see this node's peers",
                hint="only an operator account (or the node's local CLI) may",
            )
        return {"node": self.node_identity(), "peers": self.exchange.peers.list()}

    def access_remote(self) -> list[dict[str, Any]]:
        from entrepot.federation.contracts import remote_grants

        return remote_grants(self.exchange, self.actor)

    def grant_access(
        self,
        request: str,
        *,
        epsilon: float | None = None,
        max_queries: int | None = None,
        price_per_query: Decimal | str = "0",
        price_per_epsilon: Decimal | str = "0",
        actions: Sequence[str] | None = None,
        until: date | None = None,
        duties: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if duties is not None:
            options["duties"] = tuple(duties)
        info = self.exchange.contracts.grant(
            self.actor,
            request,
            epsilon=epsilon,
            max_queries=max_queries,
            price_per_query=price_per_query,
            price_per_epsilon=price_per_epsilon,
            actions=None if actions is None else tuple(actions),
            until=until,
            **options,
        )
        return info.to_body()

    def refuse_access(self, request: str, reason: str = "") -> dict[str, Any]:
        return self.exchange.contracts.refuse(self.actor, request, reason).to_body()

    def revoke_grant(self, grant: str, reason: str = "") -> dict[str, Any]:
        return self.exchange.contracts.revoke(self.actor, grant, reason).to_body()

    def grant_odrl(self, grant: str, base_url: str | None = None) -> dict[str, Any]:
        where = None if base_url is None else checked_base_url(base_url)
        return self.exchange.contracts.odrl(self.actor, grant, base_url=where)

    # -- budgets and usage -----------------------------------------------------------

    def budgets(
        self, *, closed: bool = False, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        budgets = self.exchange.budgets
        views = budgets.visible(self.actor, include_closed=closed, limit=limit, offset=offset)
        return [view.to_body() for view in views]

    def budgets_page(self, closed: bool, limit: int, offset: int = 0) -> dict[str, Any]:
        found = self.budgets(closed=closed, limit=limit, offset=offset)
        total = self.exchange.budgets.count_visible(self.actor, include_closed=closed)
        return page_body(found, total, limit, offset)

    def set_cap(self, dataset: str, epsilon: float) -> dict[str, Any]:
        return self.exchange.budgets.set_cap(self.actor, dataset, epsilon).to_body()

    def usage(self, month: str, party: str | None = None) -> dict[str, Any]:
        return self.exchange.metering.invoice(self.actor, month, party).to_dict()

    def usage_csv(self, month: str, party: str | None = None) -> str:
        return self.exchange.metering.invoice(self.actor, month, party).to_csv()

    # -- accounts and providers ------------------------------------------------------

    def accounts(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        from entrepot.exchange._account_tables import list_accounts

        found = list_accounts(self.exchange.node.db, self.actor, limit=limit, offset=offset)
        return [a.to_body() for a in found]

    def accounts_page(self, limit: int, offset: int = 0) -> dict[str, Any]:
        from entrepot.exchange._account_tables import count_accounts

        found = self.accounts(limit=limit, offset=offset)
        return page_body(found, count_accounts(self.exchange.node.db, self.actor), limit, offset)

    def tokens(
        self, account: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        from entrepot.schemas.accounts import TokenOut

        found = self.exchange.accounts.tokens(self.actor, account, limit=limit, offset=offset)
        return [TokenOut.of(t).model_dump(mode="json") for t in found]

    def tokens_page(self, account: str | None, limit: int, offset: int = 0) -> dict[str, Any]:
        found = self.tokens(account, limit=limit, offset=offset)
        total = self.exchange.accounts.count_tokens(self.actor, account)
        return page_body(found, total, limit, offset)

    def create_account(
        self, name: str, role: str, *, org: str | None = None, org_name: str | None = None
    ) -> dict[str, Any]:
        from entrepot.schemas.accounts import AccountOut

        info, issued = self.exchange.accounts.create(
            self.actor, name, role, org=org, org_name=org_name
        )
        return {"account": AccountOut.of(info).model_dump(mode="json"), "token": _new_token(issued)}

    def issue_token(self, account: str) -> dict[str, Any]:
        return _new_token(self.exchange.accounts.issue_token(self.actor, account))

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        from entrepot.schemas.accounts import TokenOut

        # Public ids are lowercase hex; one copied with spaces or in capitals is the same id.
        revoked = self.exchange.accounts.revoke_token(self.actor, token_id.strip().lower())
        return TokenOut.of(revoked).model_dump(mode="json")

    def providers(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        from entrepot.vault.providers import list_providers

        found = list_providers(self.exchange.node.db, limit=limit, offset=offset)
        return [p.to_body() for p in found]

    def providers_page(self, limit: int, offset: int = 0) -> dict[str, Any]:
        from entrepot.vault.providers import count_providers

        found = self.providers(limit=limit, offset=offset)
        return page_body(found, count_providers(self.exchange.node.db), limit, offset)

    def add_provider(self, slug: str, name: str) -> dict[str, Any]:
        from entrepot.vault.providers import add_provider

        return add_provider(self.exchange.node.db, slug, name).to_body()

    # -- queries and openings ------------------------------------------------------

    def query(
        self,
        sql: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        progress: Advance | None = None,
    ) -> dict[str, Any]:
        from entrepot.federation.join import forward_join, holders_of
        from entrepot.federation.remote import forward_query, names_a_node, remote_query_of

        holders = holders_of(self.exchange, sql) if names_a_node(sql) else None
        if holders is not None:
            return forward_join(
                self.exchange, self.actor, holders, sql, epsilon=epsilon, purpose=purpose
            )
        remote = remote_query_of(self.exchange, sql)
        if remote is not None:
            return forward_query(
                self.exchange, self.actor, remote, epsilon=epsilon, purpose=purpose
            )
        result = self.exchange.queries.run(
            self.actor, sql, epsilon=epsilon, purpose=purpose, progress=progress
        )
        return answer_body(result.to_dict())

    def join_overlap(
        self,
        left: str,
        right: str,
        *,
        epsilon: float | None = None,
        purpose: str | None = None,
        progress: Advance | None = None,
    ) -> dict[str, Any]:
        from entrepot.exchange.join import overlap_sql

        sql = overlap_sql(self.exchange.vault, left, right)
        return self.query(sql, epsilon=epsilon, purpose=purpose, progress=progress)

    def query_opening(self, index: int) -> dict[str, Any]:
        return self.exchange.openings.query(self.actor, index).to_json()

    def version_opening(self, dataset: str, version: int) -> dict[str, Any]:
        return self.exchange.openings.content(self.actor, dataset, version).to_json()

    # -- releases and sharing ------------------------------------------------------

    def release_plan(self, dataset: str, consumer: str, **spec: Any) -> dict[str, Any]:
        from entrepot.exchange.release import ReleaseSpec
        from entrepot.schemas.releases import ReleasePlanOut

        planned = self.exchange.releases.plan(self.actor, dataset, consumer, ReleaseSpec(**spec))
        return ReleasePlanOut.model_validate(planned).model_dump(mode="json")

    def release_create(self, dataset: str, consumer: str, **spec: Any) -> dict[str, Any]:
        from entrepot.exchange.release import ReleaseSpec

        made = self.exchange.releases.create(self.actor, dataset, consumer, ReleaseSpec(**spec))
        return made.to_body()

    def releases(self, *, state: str | None = None) -> list[dict[str, Any]]:
        from entrepot.exchange._release_tables import list_releases

        found = list_releases(self.exchange.node.db, self.actor, state=state)
        return [i.to_body() for i in found]

    def release_show(self, release: str) -> dict[str, Any]:
        return self.exchange.releases.show(self.actor, release).to_body()

    def release_revoke(self, release: str, reason: str = "") -> dict[str, Any]:
        check_text(reason, "reason", most=NOTE_MAX)
        return self.exchange.releases.revoke(self.actor, release, reason).to_body()

    def share_profile(self) -> dict[str, Any]:
        from entrepot.schemas.releases import SHARING_PREFIX, ShareProfile

        issued = self.exchange.sharing.issue_token(self.actor)
        endpoint = self.exchange.settings.base_url.rstrip("/") + SHARING_PREFIX
        # ISO 8601, as the profile format asks; without it the token reads as never expiring.
        expires = issued.info.expires_at.isoformat(timespec="milliseconds") + "Z"
        return ShareProfile(
            endpoint=endpoint, bearerToken=issued.secret, expirationTime=expires
        ).model_dump()

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
        log = self.exchange.node.log
        if offset is None:
            found = log.search(dataset=dataset, kind=kind, since=since, limit=limit)
        else:
            found, _ = log.page(dataset=dataset, kind=kind, since=since, limit=limit, offset=offset)
        return [{"index": index, "entry": entry} for index, entry in found]

    def audit_entries_page(
        self,
        *,
        dataset: str | None,
        kind: str | None,
        since: datetime | None,
        limit: int,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of the matching entries; unfiltered, entry ``offset`` comes first."""
        log = self.exchange.node.log
        found, total = log.page(dataset=dataset, kind=kind, since=since, limit=limit, offset=offset)
        items = [{"index": index, "entry": entry} for index, entry in found]
        return page_body(items, total, limit, offset)

    def audit_head(self) -> dict[str, Any]:
        latest = self.exchange.node.log.latest_head()
        if latest is None:
            raise NotFound(
                "the log has no signed head yet",
                hint="an auditor signs one with `entrepot audit head --new` (POST /v1/audit/heads)",
            )
        return latest.to_json()

    def audit_sign_head(self) -> dict[str, Any]:
        # An empty log has a head too: size 0, the empty tree's hash (RFC 9162 2.1.1).
        return self.exchange.node.log.sign_head().to_json()

    def audit_inclusion(self, index: int, size: int | None = None) -> dict[str, Any]:
        log = self.exchange.node.log
        if index >= log.size:
            raise NotFound(f"no log entry {index}", hint=f"the log holds {log.size} entries")
        if size is not None and index >= size:
            raise InvalidInput(
                f"entry {index} is not in the tree of size {size}: a tree of size n holds "
                f"entries 0 to n - 1",
                hint=f"ask for a {param('size')} above {index}, up to {log.size}, or leave it out",
            )
        return log.prove(index, size).to_json()

    def audit_consistency(self, size1: int, size2: int) -> dict[str, Any]:
        if size1 > size2:
            raise InvalidInput("size1 must not exceed size2", hint="swap them")
        return self.exchange.node.log.consistency(size1, size2).to_json()

    def audit_reconciliation(self) -> dict[str, Any]:
        return self.exchange.reconcile().to_json()

    def audit_export_heads(self) -> Iterator[bytes]:
        return iter(self.exchange.node.log.store.head_lines())

    def audit_export_entries(self) -> Iterator[bytes]:
        store = self.exchange.node.log.store
        # The log as it is now: entries appended while reading belong to a later export.
        return store.entries(0, store.size)

    def audit_verify(
        self,
        earlier: TreeHead | None = None,
        *,
        full: bool = False,
        node_key: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Check the node's own log: the key it signs with must be ``node_key``, if given."""
        from entrepot.exchange.reconcile import WITNESS_NOTE
        from entrepot.transparency import read_verify_key

        log = self.exchange.node.log
        key = bytes(log.verify_key)
        if node_key is not None and bytes(read_verify_key(node_key, Path(node_key))) != key:
            raise ProofInvalid(
                f"this node signs its log with key {key.hex()}, not the --node-key given",
                hint="the home is not the node you meant, or its key was replaced: "
                "compare the key with one you trust",
                part="node key",
            )
        data: dict[str, Any] = {"ok": True, "key": key.hex()}
        if earlier is not None:
            data["consistency"] = log.verify_from(earlier).to_json()
        if full or earlier is None:
            data["check"] = log.check(progress).to_json()
            found = self.exchange.reconcile()
            found.raise_for_differences()
            data["database"] = found.to_json()
            data["needs_witness"] = WITNESS_NOTE
        return data

    def audit_export(self, directory: Path) -> dict[str, Any]:
        return self.exchange.node.log.export(directory)

    def close(self) -> None:
        self.exchange.node.close()

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checked_base_url(base_url: str) -> str:
    """``base_url`` if an http(s) URL can start the ids of a document (DCAT, ODRL)."""
    if not re.fullmatch(BASE_URL_PATTERN, base_url):
        raise InvalidInput(
            f"{param('base_url')} {base_url!r} is not an http:// or https:// URL",
            hint=f"give where the node is reached, e.g. {param('base_url')} "
            "https://exchange.example, or leave it out",
        )
    return base_url


def answer_body(result: dict[str, Any]) -> dict[str, Any]:
    """A private query's result (``QueryResult.to_dict()``) as every door answers it."""
    from entrepot.schemas.queries import QueryOut

    return QueryOut.model_validate(result).model_dump(mode="json")


def _facets(
    provider: str | Sequence[str] | None,
    standard: Sequence[str],
    region: Sequence[str],
    sector: Sequence[str],
) -> Facets:
    """The catalog's facets from a door's arguments (one provider's slug, or several)."""
    from entrepot.exchange.catalog import Facets

    providers = (provider,) if isinstance(provider, str) else tuple(provider or ())
    return Facets.of(provider=providers, standard=standard, region=region, sector=sector)
