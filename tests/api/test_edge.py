"""The API's edge: body and header limits, 405s, a schema as strict as the server,
upload errors without server paths, and login without the token on a command line."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from tests.api.conftest import World, free_port

from entrepot.api import create_app
from entrepot.api.app import server_options
from entrepot.errors import InvalidInput
from entrepot.exchange.node import Node
from entrepot.schemas.catalog import SLUG
from entrepot.settings import Settings
from entrepot.vault.refs import SLUG_MAX, check_slug

Serve = Callable[[FastAPI], AbstractContextManager[httpx.Client]]


@contextmanager
def served_as_serve_does(app: FastAPI, settings: Settings) -> Iterator[int]:
    """The app on uvicorn with the options `entrepot serve` passes; yields the port."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", **server_options(settings)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def raw_request(port: int, head: bytes) -> bytes:
    """Send ``head`` over a plain socket; what the server answers before it closes.

    A server that closes with bytes still unread resets the connection: the answer
    then ends there.
    """
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
    return b"".join(chunks)


def with_header(size: int) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * size + b"\r\n\r\n"


def test_request_headers_over_the_limit_are_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "node", api_query_workers=0, request_header_max_bytes=4096)
    node = Node.init(settings)
    with served_as_serve_does(create_app(node), settings) as port:
        small = raw_request(port, with_header(1000))
        huge = raw_request(port, with_header(16 * 1024 * 1024))
    assert small.startswith(b"HTTP/1.1 200")
    # Refused (400) or cut off, never served: the server stops reading once the part of
    # the header block it holds passes the limit.
    assert huge == b"" or huge.startswith(b"HTTP/1.1 400")
    node.close()


def test_an_over_limit_chunked_body_is_413(tmp_path: Path, serve: Serve) -> None:
    node = Node.init(
        Settings(home=tmp_path / "node", api_query_workers=0, request_body_max_bytes=64)
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 50

    with serve(create_app(node)) as client:
        answer = client.post(
            "/v1/access/requests", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413
    assert answer.json()["error"]["setting"] == "request_body_max_bytes"
    node.close()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/access/requests", "GET, POST"),
        ("DELETE", "/v1/policies/riverside-hospitals/outpatient-visits", "GET, PUT"),
        ("PATCH", "/v1/queries", "POST"),
    ],
)
def test_405_lists_every_method_of_the_path(
    api: httpx.Client, method: str, path: str, allowed: str
) -> None:
    answer = api.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["error"]["code"] == "invalid_input"


def yesterday() -> str:
    return (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def next_year() -> str:
    return (datetime.now(UTC).date() + timedelta(days=365)).isoformat()


def request_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "dataset": "riverside-hospitals/outpatient-visits",
        "purpose": "public-health-surveillance",
        "epsilon": 1.0,
        "until": next_year(),
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "field"),
    [
        ("GET", "/v1/catalog/datasets/a--b/visits", None, None, "path.provider"),
        ("GET", "/v1/catalog/datasets/a-/visits", None, None, "path.provider"),
        ("GET", "/v1/catalog/datasets", {"provider": "-a"}, None, "query.provider.0"),
        ("GET", "/v1/catalog/search", {"q": "x", "region": "../x"}, None, "query.region.0"),
        ("GET", "/v1/catalog/datasets", {"sector": "Q" * 17}, None, "query.sector.0"),
        ("GET", "/v1/audit/entries", {"since": "0.5"}, None, "query.since"),
        ("GET", "/v1/audit/entries", {"since": "1700000000"}, None, "query.since"),
        ("GET", "/v1/audit/proofs/consistency", {"size1": 1, "size2": 2**62}, None, "query.size2"),
        ("GET", f"/v1/audit/proofs/inclusion/{2**62}", None, None, "path.index"),
        ("POST", "/v1/access/requests", None, request_body(until=yesterday()), "body.until"),
        (
            "POST",
            "/v1/access/requests",
            None,
            request_body(dataset="riverside--hospitals/outpatient-visits"),
            "body.dataset",
        ),
        ("POST", "/v1/access/requests", None, request_body(since=next_year(), until=None), None),
        ("POST", "/v1/access/requests", None, request_body(epsilon=True), "body.epsilon"),
        ("POST", "/v1/access/requests", None, request_body(epsilon="1"), "body.epsilon"),
        ("POST", "/v1/queries", None, {"sql": "SELECT 1", "epsilon": True}, "body.epsilon"),
    ],
)
def test_the_schema_refuses_what_the_server_would(
    world: World,
    api: httpx.Client,
    method: str,
    path: str,
    params: dict[str, str | int] | None,
    body: dict[str, object] | None,
    field: str | None,
) -> None:
    if body is not None and body.get("until") is None:
        body["until"] = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    answer = api.request(method, path, params=params, json=body, headers=world.auth("consumer"))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    if field is not None:
        assert field in error["fields"]


def test_rfc_3339_times_are_still_accepted(world: World, api: httpx.Client) -> None:
    for since in (
        "2025-01-31",
        "2025-01-31T00:00:00",
        "2025-01-31T00:00:00Z",
        "2025-01-31T08:00+08:00",
    ):
        answer = api.get(
            "/v1/audit/entries", params={"since": since}, headers=world.auth("auditor")
        )
        assert answer.status_code == 200, (since, answer.text)


def test_the_openapi_slugs_are_the_servers(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    parameter = next(
        p
        for p in schema["paths"]["/v1/catalog/datasets/{provider}/{dataset}"]["get"]["parameters"]
        if p["name"] == "provider"
    )
    assert parameter["schema"]["pattern"] == SLUG
    assert parameter["schema"]["maxLength"] == SLUG_MAX


@given(st.text(alphabet="ab0-_A", max_size=SLUG_MAX))
def test_the_slug_pattern_accepts_exactly_what_the_server_does(text: str) -> None:
    try:
        check_slug(text)
        accepted = True
    except InvalidInput:
        accepted = False
    assert (re.fullmatch(SLUG, text) is not None) == accepted


def test_upload_errors_name_the_uploaded_file_not_the_server_disk(
    world: World, api: httpx.Client
) -> None:
    home = str(world.node.home.resolve())
    for content in (b"\x00\x01\xff" * 100, b"", b"a,b\n1,2\n"):
        answer = api.post(
            "/v1/datasets",
            headers=world.auth("provider"),
            data={"standard": "health.visit", "title": "Outpatient visits"},
            files={"file": ("visits-march.csv", content)},
        )
        assert answer.status_code == 400
        text = answer.text
        assert "visits-march.csv" in text
        assert home not in text
        assert ".tmp-" not in text
        assert f"-{os.getpid()}-" not in text


def test_the_public_log_names_tokens_by_reference_not_by_id(
    world: World, api: httpx.Client
) -> None:
    operator = world.auth("operator")
    created = api.post(
        "/v1/accounts", json={"name": "analyst", "role": "consumer"}, headers=operator
    ).json()
    second = api.post("/v1/accounts/analyst/tokens", headers=operator).json()
    revoked = api.post(f"/v1/tokens/{second['info']['token_id']}/revoke", headers=operator)
    assert revoked.status_code == 200
    logged = api.get(
        "/v1/audit/entries", params={"kind": "account"}, headers=world.auth("auditor")
    ).json()["items"]
    made = {created["token"]["info"]["ref"], second["info"]["ref"]}
    entries = [e for e in logged if e["entry"]["token"] in made]
    assert [e["entry"]["change"] for e in entries] == ["created", "token_issued", "token_revoked"]
    assert entries[0]["entry"]["token"] == created["token"]["info"]["ref"]
    assert entries[1]["entry"]["token"] == entries[2]["entry"]["token"] == second["info"]["ref"]
    assert len({e["entry"]["account"] for e in entries}) == 1
    tokens = api.get("/v1/tokens", headers=operator).json()["items"]
    ids = {token["token_id"] for token in tokens}
    dumped = json.dumps(entries)
    assert not any(token_id in dumped for token_id in ids)
    refs = {entry["entry"].get("token") for entry in entries} - {None}
    assert refs <= {token["ref"] for token in tokens}
    assert refs


def login(
    url: str, config: Path, *, env_token: str | None = None, typed: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ENTREPOT_CLIENT_CONFIG": str(config)}
    env.pop("ENTREPOT_TOKEN", None)
    if env_token is not None:
        env["ENTREPOT_TOKEN"] = env_token
    return subprocess.run(
        [sys.executable, "-m", "entrepot", "login", url, "--json"],
        input=typed,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_login_takes_the_token_from_the_environment_or_a_silent_prompt(
    world: World, api: httpx.Client, tmp_path: Path
) -> None:
    url = str(api.base_url).rstrip("/")
    token = world.tokens["consumer"]
    from_env = login(url, tmp_path / "env.json", env_token=token)
    prompted = login(url, tmp_path / "prompt.json", typed=token + "\n")
    for result, config in ((from_env, "env.json"), (prompted, "prompt.json")):
        assert result.returncode == 0, result.stderr
        assert token not in result.stdout + result.stderr
        stored = json.loads((tmp_path / config).read_text())
        assert stored["token"] == token
    assert json.loads(from_env.stdout)["account"]["account"] == "consumer"
