"""Object-level authorization: every endpoint × every role × own and other object.

The world has two tenants on each side. Side ``A`` is the objects of ``provider``
and ``consumer`` (their dataset, REQ-1, GRANT-1, the consumer's account); side ``B``
those of ``other-provider`` and ``other-consumer`` (REQ-2, GRANT-2, ...). For each
role, ``A`` is its own object and ``B`` another tenant's: a cross-tenant read or write
must answer 404 where a 403 would reveal that the object exists.

Reads share one world. Each write row gets a fresh world and runs its cells in the
order listed, so a successful write (listed last, or where its effect is expected)
never changes what an earlier cell sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.exchange.accounts import Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.settings import Settings

if TYPE_CHECKING:
    from tests.api.conftest import World

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]
ROLES = ("anonymous", "operator", "provider", "consumer", "auditor")
MONTH = date.today().strftime("%Y-%m")
UNTIL = (date.today() + timedelta(days=200)).isoformat()

# Placeholders in paths and bodies, per side.
SIDES: dict[str, dict[str, str]] = {
    "A": {
        "dataset": "riverside-hospitals/outpatient-visits",
        "sql_table": "riverside_hospitals.outpatient_visits",
        "account": "consumer",
        "org": "city-health-bureau",
        "request": "REQ-1",
        "grant": "GRANT-1",
        "pending": "REQ-3",
    },
    "B": {
        "dataset": "harbor-clinics/outpatient-visits",
        "sql_table": "harbor_clinics.outpatient_visits",
        "account": "other-consumer",
        "org": "rival-analytics",
        "request": "REQ-2",
        "grant": "GRANT-2",
        "pending": "REQ-4",
    },
}


def same(anonymous: int, others: int) -> dict[str, tuple[int, int]]:
    """Every authenticated role gets ``others`` on both sides."""
    return {"anonymous": (anonymous, anonymous)} | {
        role: (others, others) for role in ROLES if role != "anonymous"
    }


def scoped(
    operator: int, provider: tuple[int, int], consumer: tuple[int, int], auditor: int
) -> dict[str, tuple[int, int]]:
    """Anonymous 401; the operator and auditor the same on both sides."""
    return {
        "anonymous": (401, 401),
        "operator": (operator, operator),
        "provider": provider,
        "consumer": consumer,
        "auditor": (auditor, auditor),
    }


# (method, path template, expected per role as (side A, side B))
READS: list[tuple[str, str, dict[str, tuple[int, int]]]] = [
    ("GET", "/v1/me", same(401, 200)),
    ("GET", "/v1/accounts", same(401, 200)),
    ("GET", "/v1/accounts/{account}/tokens", scoped(200, (404, 404), (200, 404), 404)),
    ("GET", "/v1/tokens", same(401, 200)),
    ("GET", "/v1/access/purposes", same(401, 200)),
    ("GET", "/v1/access/requests", same(401, 200)),
    ("GET", "/v1/access/requests/{request}", scoped(200, (200, 404), (200, 404), 404)),
    ("GET", "/v1/access/grants", same(401, 200)),
    ("GET", "/v1/access/grants/{grant}", scoped(200, (200, 404), (200, 404), 404)),
    ("GET", "/v1/access/grants/{grant}/odrl", scoped(200, (200, 404), (200, 404), 404)),
    ("GET", "/v1/budgets", scoped(200, (200, 200), (200, 200), 403)),
    ("GET", "/v1/usage?month=" + MONTH + "&party={org}", scoped(200, (404, 404), (200, 404), 404)),
    ("GET", "/v1/catalog/datasets", same(401, 200)),
    ("GET", "/v1/catalog/search?q=visits", same(401, 200)),
    ("GET", "/v1/catalog/datasets/{dataset}", same(401, 200)),
    ("GET", "/v1/catalog/dcat", same(401, 200)),
    ("GET", "/v1/standards", same(401, 200)),
    ("GET", "/v1/standards/health.visit", same(401, 200)),
    ("GET", "/v1/datasets/{dataset}/versions", same(401, 200)),
    ("GET", "/v1/audit/entries", same(401, 200)),
    ("GET", "/v1/standards/codelists/region.district", same(401, 200)),
    ("GET", "/v1/providers", same(401, 200)),
    ("GET", "/v1/policies/{dataset}", same(401, 200)),
    ("GET", "/v1/audit/export/heads", scoped(200, (403, 403), (403, 403), 200)),
    ("GET", "/v1/audit/export/entries", scoped(200, (403, 403), (403, 403), 200)),
    ("GET", "/metrics", scoped(200, (403, 403), (403, 403), 200)),
]

# (method, path, body, [(role, side, expected), ...] in the order they run)
Cell = tuple[str, str, int]


def refusals(*cells: Cell) -> list[Cell]:
    """Anonymous callers first (always 401), then the given cells."""
    return [("anonymous", "A", 401), ("anonymous", "B", 401), *cells]


PURPOSE = "public-health-surveillance"
QUERY = {"sql": "SELECT district, COUNT(*) AS n FROM {sql_table} GROUP BY district", "epsilon": 0.1}
WRITES: list[tuple[str, str, dict[str, Any] | None, list[Cell]]] = [
    (
        "POST",
        "/v1/access/requests",
        {
            "dataset": "{dataset}",
            "purpose": "public-health-surveillance",
            "epsilon": 1,
            "until": UNTIL,
        },
        refusals(
            *[(r, s, 403) for r in ("operator", "provider", "auditor") for s in "AB"],
            ("consumer", "A", 201),
            # REQ-4 (its own request on B) is still pending: one at a time.
            ("consumer", "B", 409),
        ),
    ),
    (
        "POST",
        "/v1/access/requests/{pending}/grant",
        {"epsilon": 1},
        refusals(
            *[(r, s, 403) for r in ("operator", "consumer", "auditor") for s in "AB"],
            ("provider", "B", 404),
            ("provider", "A", 201),
            ("provider", "A", 409),
        ),
    ),
    (
        "POST",
        "/v1/access/requests/{pending}/refuse",
        {"reason": "no"},
        refusals(
            *[(r, s, 403) for r in ("operator", "consumer", "auditor") for s in "AB"],
            ("provider", "B", 404),
            ("provider", "A", 200),
            ("provider", "A", 409),
        ),
    ),
    (
        "POST",
        "/v1/access/grants/{grant}/revoke",
        {"reason": "test"},
        refusals(
            ("auditor", "A", 404),
            ("auditor", "B", 404),
            ("consumer", "B", 404),
            ("consumer", "A", 403),
            ("provider", "B", 404),
            ("operator", "B", 200),
            ("provider", "A", 200),
            ("operator", "A", 409),
        ),
    ),
    (
        "POST",
        "/v1/accounts/{account}/tokens",
        None,
        refusals(
            ("provider", "A", 404),
            ("provider", "B", 404),
            ("auditor", "A", 404),
            ("consumer", "B", 404),
            ("consumer", "A", 201),
            ("operator", "B", 201),
        ),
    ),
    (
        "POST",
        "/v1/accounts",
        {"name": "new-{account}", "role": "consumer"},
        refusals(
            *[(r, s, 403) for r in ("provider", "consumer", "auditor") for s in "AB"],
            ("operator", "A", 201),
            ("operator", "B", 201),
        ),
    ),
    (
        "POST",
        "/v1/budgets/caps",
        {"dataset": "{dataset}", "epsilon": 20},
        refusals(
            *[(r, s, 403) for r in ("operator", "consumer", "auditor") for s in "AB"],
            ("provider", "B", 404),
            ("provider", "A", 200),
        ),
    ),
    (
        "POST",
        "/v1/queries",
        QUERY,
        refusals(
            *[(r, s, 403) for r in ("operator", "provider", "auditor") for s in "AB"],
            ("consumer", "B", 403),
            ("consumer", "A", 200),
        ),
    ),
    (
        "POST",
        "/v1/providers",
        {"slug": "new-{account}", "name": "New provider"},
        refusals(
            *[(r, s, 403) for r in ("provider", "consumer", "auditor") for s in "AB"],
            ("operator", "A", 201),
            ("operator", "B", 201),
            ("operator", "A", 409),
        ),
    ),
    (
        "PUT",
        "/v1/policies/{dataset}",
        {"document": "threshold: 12\n"},
        refusals(
            *[(r, s, 403) for r in ("operator", "consumer", "auditor") for s in "AB"],
            ("provider", "B", 404),
            ("provider", "A", 200),
        ),
    ),
]


def fill(template: Any, side: str) -> Any:
    if isinstance(template, str):
        return template.format(**SIDES[side])
    if isinstance(template, dict):
        return {k: fill(v, side) for k, v in template.items()}
    return template


def call(
    client: httpx.Client, world: World, role: str, method: str, path: str, body: Any
) -> httpx.Response:
    headers = {} if role == "anonymous" else world.auth(role)
    return client.request(method, path, json=body, headers=headers)


def add_pending_requests(node: Node) -> None:
    """REQ-3: rival-analytics asks riverside (side A's inbox); REQ-4: the reverse."""
    accounts, contracts = (
        Accounts(node.db, node.settings, log=node.log),
        Contracts(node.db, node.settings, log=node.log),
    )
    for consumer, dataset in (("rival-analytics", "A"), ("city-health-bureau", "B")):
        contracts.request(
            accounts.actor(consumer),
            SIDES[dataset]["dataset"],
            purpose="public-health-surveillance",
            epsilon=1,
            until=date.today() + timedelta(days=100),
        )


@pytest.fixture(scope="module")
def read_world(
    tmp_path_factory: pytest.TempPathFactory, serve: Serve, make_world: Callable[[Node], World]
) -> Iterator[tuple[httpx.Client, World]]:
    node = Node.init(
        Settings(home=tmp_path_factory.mktemp("authz") / "node", token_hash_memory_kib=1024)
    )
    world = make_world(node)
    with serve(create_app(node)) as client:
        yield client, world
    node.close()


@pytest.mark.parametrize(("method", "path", "expected"), READS, ids=[r[1] for r in READS])
def test_reads(
    read_world: tuple[httpx.Client, World],
    method: str,
    path: str,
    expected: dict[str, tuple[int, int]],
) -> None:
    client, world = read_world
    got = {
        role: tuple(
            call(client, world, role, method, fill(path, side), None).status_code for side in "AB"
        )
        for role in ROLES
    }
    assert got == expected


@pytest.mark.parametrize(
    ("method", "path", "body", "cells"), WRITES, ids=[f"{w[0]} {w[1]}" for w in WRITES]
)
def test_writes(
    node: Node,
    serve: Serve,
    make_world: Callable[[Node], World],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    cells: list[Cell],
) -> None:
    world = make_world(node)
    add_pending_requests(node)
    with serve(create_app(node)) as client:
        got = []
        for role, side, _ in cells:
            response = call(client, world, role, method, fill(path, side), fill(body, side))
            got.append((role, side, response.status_code))
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}
    assert got == cells


def test_lists_hold_only_what_each_tenant_may_see(read_world: tuple[httpx.Client, World]) -> None:
    client, world = read_world

    def ids(role: str, path: str) -> set[str]:
        return {item["id"] for item in client.get(path, headers=world.auth(role)).json()["items"]}

    assert ids("consumer", "/v1/access/requests") == {"REQ-1"}
    assert ids("other-consumer", "/v1/access/requests") == {"REQ-2"}
    assert ids("provider", "/v1/access/grants") == {"GRANT-1"}
    assert ids("other-provider", "/v1/access/grants") == {"GRANT-2"}
    assert ids("operator", "/v1/access/grants") == {"GRANT-1", "GRANT-2"}
    assert ids("auditor", "/v1/access/grants") == set()
    budgets = client.get("/v1/budgets", headers=world.auth("consumer")).json()["items"]
    assert [b["grant"] for b in budgets] == ["GRANT-1"]
    provider_budgets = client.get("/v1/budgets", headers=world.auth("other-provider")).json()
    assert [b["grant"] for b in provider_budgets["items"]] == ["GRANT-2"]
