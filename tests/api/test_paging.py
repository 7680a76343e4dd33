"""Every list is paged in the database: any window of it is the same slice of the whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.api.conftest import DATASETS, World, build_world, running

from entrepot.api.app import create_app
from entrepot.client.http import HttpClient
from entrepot.client.local import LocalClient
from entrepot.exchange import Exchange, Node
from entrepot.exchange.accounts import Accounts
from entrepot.settings import Settings

# (a list, read whole) and (the same list, one page of it) for every list a route pages.
Listing = tuple[Callable[[LocalClient], list[Any]], Callable[[LocalClient, int, int], Any]]
LISTS: dict[str, Listing] = {
    "accounts": (lambda c: c.accounts(), lambda c, n, o: c.accounts_page(n, o)),
    "tokens": (lambda c: c.tokens(), lambda c, n, o: c.tokens_page(None, n, o)),
    "account tokens": (
        lambda c: c.tokens("consumer"),
        lambda c, n, o: c.tokens_page("consumer", n, o),
    ),
    "providers": (lambda c: c.providers(), lambda c, n, o: c.providers_page(n, o)),
    "datasets": (
        lambda c: c.catalog_datasets(),
        lambda c, n, o: c.catalog_datasets_page(None, n, o),
    ),
    "search": (
        lambda c: c.catalog_search("visits"),
        lambda c, n, o: c.catalog_search_page("visits", n, o),
    ),
    "versions": (
        lambda c: c.dataset_versions(DATASETS["provider"]),
        lambda c, n, o: c.dataset_versions_page(DATASETS["provider"], n, o),
    ),
    "requests": (
        lambda c: c.access_requests(),
        lambda c, n, o: c.access_requests_page(False, n, o),
    ),
    "grants": (lambda c: c.access_grants(), lambda c, n, o: c.access_grants_page(False, n, o)),
    "budgets": (lambda c: c.budgets(), lambda c, n, o: c.budgets_page(False, n, o)),
    "purposes": (lambda c: c.purposes(), lambda c, n, o: c.purposes_page(n, o)),
    "standards": (lambda c: c.standards(), lambda c, n, o: c.standards_page(n, o)),
    "audit entries": (
        lambda c: c.audit_entries(limit=10**6),
        lambda c, n, o: c.audit_entries_page(
            dataset=None, kind=None, since=None, limit=n, offset=o
        ),
    ),
    "audit entries of a kind": (
        lambda c: c.audit_entries(kind="account", limit=10**6),
        lambda c, n, o: c.audit_entries_page(
            dataset=None, kind="account", since=None, limit=n, offset=o
        ),
    ),
}


# The market is built once for the module; no example changes it.
_FIXTURE = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("paging") / "node"
    node = Node.init(Settings(home=home, token_hash_memory_kib=1024))
    world = build_world(node)
    # More than one page of versions and of accounts at small limits.
    for version in range(3):
        LocalClient(Exchange(node), _operator(node)).publish(
            node.home / "visits.csv",
            standard="health.visit",
            title=f"Outpatient visits, take {version + 2}",
            provider="riverside-hospitals",
            dataset="outpatient-visits",
        )
    yield world
    node.close()


def _operator(node: Node) -> Any:
    return Accounts(node.db, node.settings, log=node.log).actor("exchange-operator")


@pytest.mark.parametrize("name", sorted(LISTS))
@settings(max_examples=25, deadline=None, suppress_health_check=_FIXTURE)
@given(limit=st.integers(1, 12), offset=st.integers(0, 40))
def test_a_page_is_the_window_of_the_whole_list(
    market: World, name: str, limit: int, offset: int
) -> None:
    client = LocalClient(Exchange(market.node), _operator(market.node))
    whole, page_of = LISTS[name]
    everything = whole(client)
    page = page_of(client, limit, offset)
    assert page["items"] == everything[offset : offset + limit]
    assert (page["total"], page["limit"], page["offset"]) == (len(everything), limit, offset)
    end = offset + len(page["items"])
    assert page["next_offset"] == (end if end < len(everything) else None)


@pytest.mark.parametrize("name", sorted(LISTS))
@settings(max_examples=8, deadline=None, suppress_health_check=_FIXTURE)
@given(limit=st.integers(1, 7))
def test_the_pages_followed_from_the_first_make_the_whole_list(
    market: World, name: str, limit: int
) -> None:
    client = LocalClient(Exchange(market.node), _operator(market.node))
    whole, page_of = LISTS[name]
    found: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        page = page_of(client, limit, offset)
        found.extend(page["items"])
        offset = page["next_offset"]
    assert found == whole(client)


def test_every_list_route_pages_and_the_http_client_reads_them_whole(market: World) -> None:
    with running(create_app(market.node)) as api:
        operator = market.auth("operator")
        for path in (
            "/v1/accounts",
            "/v1/tokens",
            "/v1/providers",
            "/v1/catalog/datasets",
            f"/v1/datasets/{DATASETS['provider']}/versions",
            "/v1/access/requests",
            "/v1/access/grants",
            "/v1/budgets",
            "/v1/access/purposes",
            "/v1/standards",
            "/v1/audit/entries",
        ):
            body = api.get(path, params={"limit": 2, "offset": 1}, headers=operator).json()
            assert set(body) == {"items", "total", "limit", "offset", "next_offset"}, path
            assert (body["limit"], body["offset"]) == (2, 1), path
        local = LocalClient(Exchange(market.node), _operator(market.node))
        with HttpClient(str(api.base_url), market.tokens["operator"]) as remote:
            versions = remote.dataset_versions(DATASETS["provider"])
            assert versions == local.dataset_versions(DATASETS["provider"])
            assert remote.purposes(limit=3, offset=2) == local.purposes(limit=3, offset=2)
            assert remote.audit_entries(limit=4) == local.audit_entries(limit=4)
            shown = remote.audit_entries(limit=3, offset=2)
            assert shown == local.audit_entries(limit=3, offset=2)


def test_the_log_pages_by_index(market: World, tmp_path: Path) -> None:
    with running(create_app(market.node)) as api:
        auditor = market.auth("auditor")
        page = api.get("/v1/audit/entries", params={"offset": 2, "limit": 3}, headers=auditor)
        assert [item["index"] for item in page.json()["items"]] == [2, 3, 4]
        assert page.json()["total"] == market.node.log.size
        beyond = api.get(
            "/v1/audit/entries", params={"offset": market.node.log.size}, headers=auditor
        ).json()
        assert (beyond["items"], beyond["next_offset"]) == ([], None)


def test_a_caller_pages_through_only_what_it_may_see(market: World) -> None:
    with running(create_app(market.node)) as api:
        consumer = market.auth("consumer")
        grants = api.get("/v1/access/grants", params={"limit": 1}, headers=consumer).json()
        budgets = api.get("/v1/budgets", params={"limit": 1}, headers=consumer).json()
        accounts = api.get("/v1/accounts", params={"limit": 1}, headers=consumer).json()
    assert (grants["total"], budgets["total"], accounts["total"]) == (1, 1, 1)
    assert grants["next_offset"] is None


def test_a_limit_above_the_node_ceiling_is_capped(market: World) -> None:
    capped = httpx.QueryParams({"limit": 10_000})
    with running(create_app(market.node)) as api:
        body = api.get("/v1/audit/entries", params=capped, headers=market.auth("auditor")).json()
    assert body["limit"] == market.node.settings.page_max
