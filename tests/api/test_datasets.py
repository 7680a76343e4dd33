"""Publishing over HTTP: multipart upload, provider only, size-limited."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.api.conftest import DATASETS

from entrepot.api import create_app
from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from fastapi import FastAPI
    from tests.api.conftest import World

FORM = {"standard": "health.visit", "title": "Outpatient visits 2026", "on_error": "reject"}


def upload(
    client: httpx.Client, world: World, who: str, data: bytes, **form: str
) -> httpx.Response:
    return client.post(
        "/v1/datasets",
        data={**FORM, **form},
        files={"file": ("visits.csv", data, "text/csv")},
        headers=world.auth(who),
    )


def test_provider_publishes_a_new_version_of_its_own_dataset(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    data = make_visits(tmp_path / "v.csv", 50, seed=3).read_bytes()
    response = upload(api, world, "provider", data, dataset="outpatient-visits")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["dataset"] == "riverside-hospitals/outpatient-visits"
    assert body["version"] == 2
    assert body["rows"] == 50
    versions = api.get(
        "/v1/datasets/riverside-hospitals/outpatient-visits/versions",
        headers=world.auth("consumer"),
    ).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
    _, logged = world.node.log.search(kind="dataset_version")[-1]
    assert (logged["dataset"], logged["version"]) == (body["dataset"], 2)
    # The public entry commits to the file; its plain hash is the provider's to show.
    assert "sha256" not in logged
    assert body["sha256"] not in str(logged)


@pytest.mark.parametrize("who", ["consumer", "auditor", "operator"])
def test_only_providers_publish(world: World, api: httpx.Client, who: str) -> None:
    response = upload(api, world, who, b"visit_id\n")
    assert response.status_code == 403


def _answer_while_the_body_is_due(port: int, path: str, headers: str, wait: float = 10) -> bytes:
    """The status line the server sends to a 50 MiB upload of which only its first
    bytes came, or b"" when it is still waiting for the rest after ``wait`` seconds."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {50 * 2**20}\r\n\r\n--b\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head.encode())
        try:
            return sock.recv(65536).split(b"\r\n", 1)[0]
        except TimeoutError:
            return b""


def test_an_upload_is_refused_before_it_is_read_unless_a_provider_sends_it(
    world: World, api: httpx.Client
) -> None:
    port = api.base_url.port
    assert port is not None
    bearer = "Authorization: Bearer {}\r\n".format
    for headers, status in [
        ("", b"401"),
        (bearer("ent_000000000000_" + "A" * 43), b"401"),
        (bearer(world.tokens["consumer"]), b"403"),
    ]:
        answer = _answer_while_the_body_is_due(port, "/v1/datasets", headers)
        assert answer.split(b" ")[1:2] == [status], (headers, answer)
    # The portal's publish form: a visitor without a session is sent to sign in, a
    # script is told it is signed out.
    signin = _answer_while_the_body_is_due(port, "/provider/publish", "")
    assert signin.split(b" ")[1:2] == [b"303"], signin
    scripted = _answer_while_the_body_is_due(port, "/provider/publish", "X-CSRF-Token: x\r\n")
    assert scripted.split(b" ")[1:2] == [b"401"], scripted
    # A provider's upload is read: the server waits for the rest of it (for as long as
    # request_body_timeout_s, 60 s, allows while nothing arrives).
    provider = bearer(world.tokens["provider"])
    assert _answer_while_the_body_is_due(port, "/v1/datasets", provider, wait=2) == b""


def test_rows_breaking_the_standard_are_refused_with_the_report(
    world: World, api: httpx.Client
) -> None:
    response = upload(api, world, "provider", b"visit_id,cost\nV1,-3\n")
    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error"}


def test_an_uploaded_mapping_may_not_read_server_files(world: World, api: httpx.Client) -> None:
    mapping = b"columns:\n  district: {from: qx, codes_file: /etc/passwd}\n"
    response = api.post(
        "/v1/datasets",
        data=FORM,
        files={"file": ("v.csv", b"qx\n1\n", "text/csv"), "mapping": ("m.yaml", mapping)},
        headers=world.auth("provider"),
    )
    assert response.status_code == 400
    assert "codes_file" in response.json()["error"]["message"]


def test_uploads_over_the_limit_are_refused_before_parsing(
    tmp_path: Path,
    serve: Callable[[FastAPI], AbstractContextManager[httpx.Client]],
    make_world: Callable[[Node], World],
) -> None:
    node = Node.init(
        Settings(home=tmp_path / "node", max_upload_bytes=64_000, token_hash_memory_kib=1024)
    )
    world = make_world(node)
    with serve(create_app(node)) as client:
        response = upload(client, world, "provider", b"x" * 100_000)
    node.close()
    assert response.status_code == 413
    assert response.json()["error"]["setting"] == "max_upload_bytes"


def test_uploads_racing_for_one_dataset_each_get_their_own_logged_version(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    files = [
        make_visits(tmp_path / f"v{i}.csv", 40 + i, seed=10 + i).read_bytes() for i in range(4)
    ]
    with ThreadPoolExecutor(len(files)) as pool:
        answers = list(
            pool.map(
                lambda data: upload(api, world, "provider", data, dataset="outpatient-visits"),
                files,
            )
        )
    assert [a.status_code for a in answers] == [201] * len(files), [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert sorted(b["version"] for b in bodies) == [2, 3, 4, 5]
    assert sorted(b["rows"] for b in bodies) == [40, 41, 42, 43]
    logged = [e for _, e in world.node.log.search(kind="dataset_version")]
    mine = sorted(e["version"] for e in logged if e["dataset"] == DATASETS["provider"])
    assert mine == [1, 2, 3, 4, 5]
    assert Exchange(world.node).reconcile().differences == []


def test_an_uploads_name_neither_places_nor_decodes_its_bytes(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    data = make_visits(tmp_path / "v.csv", 30, seed=5).read_bytes()
    response = api.post(
        "/v1/datasets",
        data={**FORM, "dataset": "outpatient-visits"},
        files={"file": ("../../keys/visits.csv.gz", data, "text/csv")},
        headers=world.auth("provider"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["rows"], body["report"]["source"]) == (30, "visits.csv.gz")
    home = world.node.home
    assert not (home / "keys" / "visits.csv.gz").exists()
    assert not list((home / "vaults" / ".incoming").iterdir())


def test_an_upload_for_another_providers_dataset_stays_with_its_sender(
    world: World, api: httpx.Client, tmp_path: Path, make_visits: Callable[..., Path]
) -> None:
    data = make_visits(tmp_path / "v.csv", 30, seed=6).read_bytes()
    theirs = DATASETS["provider"]
    before = api.get(f"/v1/datasets/{theirs}/versions", headers=world.auth("provider")).json()
    response = upload(api, world, "other-provider", data, dataset=theirs.split("/")[1])
    assert response.status_code == 201, response.text
    assert response.json()["dataset"] == DATASETS["other-provider"]
    after = api.get(f"/v1/datasets/{theirs}/versions", headers=world.auth("provider")).json()
    assert after == before
