"""API tests run the real app on a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from entrepot.api import create_app
from entrepot.exchange.node import Node


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


@pytest.fixture
def serve() -> Callable[[FastAPI], AbstractContextManager[httpx.Client]]:
    """``with serve(app) as client``: the app on uvicorn, and a client for it."""
    return running


@pytest.fixture
def api(node: Node) -> Iterator[httpx.Client]:
    """The real app over a real node, on a real uvicorn server on loopback."""
    with running(create_app(node)) as client:
        yield client
