"""`entrepot serve --workers 2 --query-workers 1`: queries answered, a clean stop.

Each API worker runs its private queries in a process of its own. A burst of
queries from several consumers is answered with exact budgets; SIGTERM to the
server's process group then ends every process of it (API workers, query workers
and the processes that fork them) without a traceback.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from test_server import server
from test_server_workers import SQL, seed

from entrepot.exchange.node import Node
from entrepot.privacy.ledger import Ledger
from entrepot.settings import Settings


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


@pytest.mark.slow
def test_two_workers_with_query_processes_answer_and_stop_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "node"
    tokens = seed(home, f"sqlite:///{home / 'node.db'}")

    def ask(n: int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[n % 4]}"}
        payload = {"sql": SQL, "epsilon": 0.01 + n * 1e-6}
        return httpx.post(f"{url}/v1/queries", json=payload, headers=headers, timeout=60)

    with server(home, "--workers", "2", "--query-workers", "1") as (url, process):
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(ask, range(16)))
        # The supervisor, two API workers, and per worker a fork server and a query process.
        assert len(group_members(process.pid)) >= 7
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        output = process.stdout.read() if process.stdout else ""
    assert [r.status_code for r in responses] == [200] * 16, responses[0].text
    assert "Traceback" not in output, output
    deadline = time.monotonic() + 30
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(process.pid) == []

    node = Node.open(Settings(home=home))
    try:
        assert Ledger(node.db).check() == []
        spent = sum(row.epsilon_spent for row in Ledger(node.db).budgets())
        assert spent == pytest.approx(sum(r.json()["epsilon_spent"] for r in responses))
    finally:
        node.close()
