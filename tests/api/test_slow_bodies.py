"""A request body must keep coming: one trickled in is refused (408) and its connection
closed, at either door of a dataset upload, while an upload at a steady pace takes as
long as it needs. Each test serves a node whose ``request_body_timeout_s`` is short."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.api.conftest import World
from tests.portal.pages import Signed

from entrepot.api import create_app
from entrepot.exchange.node import Node
from entrepot.settings import Settings

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]
# Each MiB of a body may take this long: 2 MiB/s at least, on average.
TIMEOUT_S = 0.5
BOUNDARY = "entrepot-test-boundary"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, serve: Serve, make_world: Callable[[Node], World]
) -> Iterator[tuple[httpx.Client, World]]:
    home = tmp_path_factory.mktemp("slow-bodies") / "node"
    node = Node.init(
        Settings(home=home, request_body_timeout_s=TIMEOUT_S, token_hash_memory_kib=1024)
    )
    world = make_world(node)
    with serve(create_app(node)) as client:
        yield client, world
    node.close()


def _port(client: httpx.Client) -> int:
    """The loopback port the served node listens on."""
    port = client.base_url.port
    assert port is not None
    return port


def _trickled(port: int, path: str, headers: str, limit_s: float = 10) -> tuple[bytes, float, bool]:
    """Declare a 1 MiB multipart upload, then send it a byte every 50 ms until the server
    answers: its answer, how long it took to come, and whether the server then closed
    the connection (within ``limit_s``)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {2**20}\r\n\r\n--{BOUNDARY}\r\n"
    )
    answer, took, closed = b"", limit_s, False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode())
        sock.settimeout(0.05)
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if not answer:
                    sock.sendall(b"x")
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            if not answer:
                took = time.monotonic() - began
            answer += chunk
    return answer, took, closed


def _refusal(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split(" ")[1]), headers, json.loads(body)["error"]


def _assert_cut_for_time(answer: bytes, took: float, closed: bool) -> None:
    assert answer, "the server still waits for a body trickled in"
    status, headers, error = _refusal(answer)
    assert status == 408, answer
    assert error["code"] == "limit_exceeded"
    assert error["setting"] == "request_body_timeout_s"
    assert "ENTREPOT_REQUEST_BODY_TIMEOUT_S" in str(error["hint"])
    # Cut once its time is spent, not at the end of the whole body it declared.
    assert TIMEOUT_S <= took < TIMEOUT_S + 3, took
    # The rest of the body is never read: the connection is not kept for it.
    assert headers["connection"] == "close"
    assert closed


def test_an_upload_trickled_in_is_refused_for_time_and_its_connection_closed(
    served: tuple[httpx.Client, World],
) -> None:
    client, world = served
    port = _port(client)
    bearer = f"Authorization: Bearer {world.tokens['provider']}\r\n"
    _assert_cut_for_time(*_trickled(port, "/v1/datasets", bearer))


def test_the_portals_publish_form_trickled_in_is_refused_for_time(
    served: tuple[httpx.Client, World],
) -> None:
    client, world = served
    port = _port(client)
    provider = Signed(str(client.base_url), world.tokens["provider"])
    try:
        cookie = "; ".join(f"{name}={value}" for name, value in provider.http.cookies.items())
    finally:
        provider.http.close()
    headers = f"Cookie: {cookie}\r\nX-CSRF-Token: {provider.csrf}\r\n"
    _assert_cut_for_time(*_trickled(port, "/provider/publish", headers))


def test_a_large_upload_at_a_steady_pace_takes_as_long_as_it_needs(
    served: tuple[httpx.Client, World], tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    client, world = served
    data = make_visits(tmp_path / "visits.csv", 100_000).read_bytes()
    assert len(data) > 5 * 2**20
    fields = {"standard": "health.visit", "title": "Visits sent slowly", "on_error": "reject"}
    parts = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    body = (
        parts
        + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="visits.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    chunk = 64 * 1024

    def steadily() -> Iterator[bytes]:
        # 4 MiB/s: twice the slowest pace the node takes, for several times its timeout.
        for start in range(0, len(body), chunk):
            time.sleep(chunk / (4 * 2**20))
            yield body[start : start + chunk]

    began = time.monotonic()
    response = client.post(
        "/v1/datasets",
        content=steadily(),
        headers={
            **world.auth("provider"),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(body)),
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == 100_000
    assert time.monotonic() - began > 2 * TIMEOUT_S


def test_an_upload_refused_before_its_body_is_read_closes_its_connection(
    served: tuple[httpx.Client, World],
) -> None:
    port = _port(served[0])
    # No token: refused at once, its body never read; the connection is not kept for it.
    answer, took, closed = _trickled(port, "/v1/datasets", "")
    status, headers, error = _refusal(answer)
    assert (status, error["code"]) == (401, "unauthorized")
    assert took < TIMEOUT_S
    assert headers["connection"] == "close"
    assert closed
