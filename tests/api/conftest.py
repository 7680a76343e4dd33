"""API tests run the real app on a real uvicorn server on a free loopback port."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from entrepot import standards
from entrepot.api import create_app
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.catalog import publish_version
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault.protocol import PublishRequest
from entrepot.vault.providers import add_provider


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: FastAPI) -> Iterator[httpx.Client]:
    """An httpx client on the app served by uvicorn over loopback TCP."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="session")
def serve() -> Callable[[FastAPI], AbstractContextManager[httpx.Client]]:
    """``with serve(app) as client``: the app on uvicorn, and a client for it."""
    return running


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A fresh node; Argon2id at 1 MiB (same code path, no seconds spent per token)."""
    opened = Node.init(Settings(home=tmp_path / "node", token_hash_memory_kib=1024))
    yield opened
    opened.close()


@pytest.fixture
def api(node: Node) -> Iterator[httpx.Client]:
    """The real app over a real node, on a real uvicorn server on loopback."""
    with running(create_app(node)) as client:
        yield client


@dataclass
class World:
    """A node with two tenants on each side: every role, and an "other" of each."""

    node: Node
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


# account name -> (role, organization); `provider`/`consumer` own the objects of the
# matrix, `other-*` are the tenants that must not see them.
ACCOUNTS = {
    "operator": ("operator", "exchange-operator"),
    "provider": ("provider", "riverside-hospitals"),
    "other-provider": ("provider", "harbor-clinics"),
    "consumer": ("consumer", "city-health-bureau"),
    "other-consumer": ("consumer", "rival-analytics"),
    "auditor": ("auditor", "public-auditor"),
}


# Dataset of each provider; the consumer holds GRANT-1 (REQ-1) on the first, the
# other consumer GRANT-2 (REQ-2) on the second.
DATASETS = {
    "provider": "riverside-hospitals/outpatient-visits",
    "other-provider": "harbor-clinics/outpatient-visits",
}
DISTRICTS = ("910101", "910102", "910103", "910104")


def visits_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """A valid health.visit CSV of ``rows`` synthetic visits."""
    rng = random.Random(seed)
    lines = [
        "visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost,duration_hours"
    ]
    for i in range(rows):
        lines.append(
            f"V{i:07d},P-{rng.randrange(2_000):05d},2025-{rng.randrange(1, 13):02d}-"
            f"{rng.randrange(1, 29):02d},{rng.choice(DISTRICTS)},{rng.choice((1, 2))},"
            f"{rng.choice(('00-04', '05-14', '15-24'))},{rng.choice(('I', 'II', 'III'))},"
            f"{rng.uniform(10, 900):.2f},{rng.uniform(0.1, 5):.2f}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_world(node: Node, rows: int = 300, epsilon: float = 5.0) -> World:
    world = World(node)
    accounts = Accounts(node.db, node.settings, log=node.log)
    contracts = Contracts(node.db, node.settings, log=node.log)
    for slug, name in (("riverside-hospitals", "Riverside"), ("harbor-clinics", "Harbor")):
        add_provider(node.db, slug, name)
    for name, (role, org) in ACCOUNTS.items():
        _info, issued = accounts.create(LOCAL, name, role, org=org)
        world.tokens[name] = issued.secret
    source = visits_csv(node.home / "visits.csv", rows)
    for ref in DATASETS.values():
        provider, dataset = ref.split("/")
        with source.open("rb") as data:
            publish_version(
                node,
                PublishRequest(
                    provider=provider,
                    standard=standards.get("health.visit"),
                    title="Outpatient visits",
                    dataset=dataset,
                ),
                data,
            )
    for consumer, owner in (("consumer", "provider"), ("other-consumer", "other-provider")):
        request = contracts.request(
            accounts.actor(ACCOUNTS[consumer][1]),
            DATASETS[owner],
            purpose="public-health-surveillance",
            epsilon=epsilon,
            until=date.today() + timedelta(days=365),
        )
        contracts.grant(accounts.actor(ACCOUNTS[owner][1]), request.ref, epsilon=epsilon)
    return world


@pytest.fixture
def world(node: Node) -> World:
    return build_world(node)


@pytest.fixture(scope="session")
def make_world() -> Callable[[Node], World]:
    """``make_world(node)``: seed a node with every role, for module-scoped servers."""
    return build_world


@pytest.fixture(scope="session")
def make_visits() -> Callable[..., Path]:
    """``make_visits(path, rows, seed=7)``: write a valid health.visit CSV."""
    return visits_csv
