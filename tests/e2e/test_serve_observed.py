"""`entrepot serve` as operators watch it: its access log, a taken port, `/metrics`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.test_server import ENTREPOT, entrepot, free_port, init_node, server, wait_healthy

from entrepot.errors import ExitCode
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings

SECRET = "ent_abcdefabcdef_topsecretvalue"


def operator_token(home: Path) -> str:
    node = Node.open(Settings(home=home, token_hash_memory_kib=1024))
    try:
        accounts = Accounts(node.db, node.settings, log=node.log)
        return accounts.create(LOCAL, "watch", "operator")[1].secret
    finally:
        node.close()


def test_a_taken_port_is_named_plainly(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = entrepot("serve", "--home", str(home), "--port", str(port))
    assert result.returncode == ExitCode.CONFLICT
    text = " ".join(result.stderr.split())
    assert f"port {port} on 127.0.0.1 is already in use" in text
    assert "--port" in text
    assert "Traceback" not in result.stderr + result.stdout
    assert "uvicorn" not in (result.stderr + result.stdout).lower()


def test_the_access_log_names_routes_never_tokens_or_query_strings(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home)
    port = free_port()
    process = subprocess.Popen(
        [*ENTREPOT, "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        httpx.get(
            f"{url}/v1/catalog/datasets/riverside/visits?sql=SELECT+secret",
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        httpx.get(f"{url}/riverside/private-path")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert "method=GET route=/healthz status=200 duration_ms=" in out
    assert "method=GET route=/v1/catalog/datasets/{provider}/{dataset} status=401 " in out
    assert "method=GET route=<unmatched> status=404 " in out
    for leak in ("topsecret", "abcdefabcdef", "SELECT", "riverside", "private-path"):
        assert leak not in out + err


def test_several_workers_sum_their_metrics_whichever_answers(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init_node(home)
    token = operator_token(home)
    env = {**os.environ, "ENTREPOT_TOKEN_HASH_MEMORY_KIB": "1024"}
    with server(home, "--workers", "2", "--query-workers", "0", env=env) as (url, _process):
        for _ in range(20):
            assert httpx.get(f"{url}/healthz").status_code == 200
        auth = {"Authorization": f"Bearer {token}"}
        scrapes = [httpx.get(f"{url}/metrics", headers=auth) for _ in range(4)]
        shared = [path for path in (home / "tmp").iterdir() if path.is_dir()]
    assert len(shared) == 1, "the workers share one metrics folder under the home"
    for scraped in scrapes:
        assert scraped.status_code == 200
        counts = {
            (sample.labels["route"], sample.labels["status"]): sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
            if sample.name == "entrepot_http_requests_total"
        }
        assert counts[("/healthz", "200")] == 21  # and the one that found the server up
    assert not shared[0].exists(), "and it goes when serve stops"
