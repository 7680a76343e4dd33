"""API tests run the real app on a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
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


def build_world(node: Node) -> World:
    world = World(node)
    accounts = Accounts(node.db, node.settings)
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    add_provider(node.db, "harbor-clinics", "Harbor Clinics")
    for name, (role, org) in ACCOUNTS.items():
        _info, issued = accounts.create(LOCAL, name, role, org=org)
        world.tokens[name] = issued.secret
    return world


@pytest.fixture
def world(node: Node) -> World:
    return build_world(node)


@pytest.fixture(scope="session")
def make_world() -> Callable[[Node], World]:
    """``make_world(node)``: seed a node with every role, for module-scoped servers."""
    return build_world
