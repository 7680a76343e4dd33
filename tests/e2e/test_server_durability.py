"""kill -9 the server during a burst of grants and queries; restart; nothing acknowledged is lost.

Every write the server acknowledged (a 2xx answer) must be there after the restart:
each grant in state ``granted``, each answered query's ledger row and log entry. And
the budgets must equal the ledger: for every budget and every dataset cap, the ε
debited equals the sum of its ledger rows (``Ledger.check``), whatever was in flight
when the process died.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from test_server import server, wait_healthy

from entrepot import standards
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts, Grant
from entrepot.exchange.node import Node
from entrepot.privacy.ledger import Ledger, LedgerEntry
from entrepot.settings import Settings
from entrepot.vault import LocalVault
from entrepot.vault.protocol import PublishRequest
from entrepot.vault.providers import add_provider

DATASET = "riverside-hospitals/outpatient-visits"
SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"
GRANTED = 4  # consumers that can query from the start
PENDING = 24  # consumers whose requests the provider grants during the burst


def seed(home: Path) -> dict[str, str]:
    """A provider, its dataset, GRANTED consumers with grants, PENDING with requests."""
    node = Node.init(Settings(home=home))
    accounts, contracts = (
        Accounts(node.db, node.settings, log=node.log),
        Contracts(node.db, node.settings, log=node.log),
    )
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    _info, issued = accounts.create(LOCAL, "riverside", "provider", org="riverside-hospitals")
    tokens = {"provider": issued.secret}
    lines = ["visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost"]
    lines += [
        f"V{i:05d},P-{i % 97:04d},2025-03-{i % 28 + 1:02d},910101,1,15-24,I,{i % 500}.5"
        for i in range(400)
    ]
    source = home / "visits.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with source.open("rb") as data:
        LocalVault.of(node).publish(
            PublishRequest(
                provider="riverside-hospitals",
                standard=standards.get("health.visit"),
                title="Outpatient visits",
                dataset="outpatient-visits",
            ),
            data,
        )
    provider = accounts.actor("riverside-hospitals")
    for i in range(GRANTED + PENDING):
        name = f"bureau-{i}"
        tokens[name] = accounts.create(LOCAL, name, "consumer")[1].secret
        request = contracts.request(
            accounts.actor(name),
            DATASET,
            purpose="public-health-surveillance",
            epsilon=3,
            until=date.today() + timedelta(days=60),
        )
        if i < GRANTED:
            contracts.grant(provider, request.ref, epsilon=3)
    node.close()
    return tokens


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    home = tmp_path / "node"
    tokens = seed(home)
    acknowledged_grants: list[str] = []
    acknowledged_queries: list[dict[str, object]] = []
    lock = threading.Lock()
    enough = threading.Event()

    def grant(url: str, i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens['provider']}"}
        try:
            response = httpx.post(
                f"{url}/v1/access/requests/REQ-{GRANTED + i + 1}/grant",
                json={"epsilon": 2},
                headers=headers,
                timeout=30,
            )
        except httpx.TransportError:
            return
        if response.status_code == 201:
            with lock:
                acknowledged_grants.append(response.json()["id"])

    def query(url: str, consumer: int, n: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[f'bureau-{consumer}']}"}
        try:
            response = httpx.post(
                f"{url}/v1/queries",
                json={"sql": SQL, "epsilon": 0.01 + n * 1e-6},
                headers=headers,
                timeout=30,
            )
        except httpx.TransportError:
            return
        if response.status_code == 200:
            with lock:
                acknowledged_queries.append(response.json())
                if len(acknowledged_queries) >= 12 and len(acknowledged_grants) >= 4:
                    enough.set()

    with server(home) as (url, process):
        with ThreadPoolExecutor(max_workers=12) as pool:
            for i in range(PENDING):
                pool.submit(grant, url, i)
                for consumer in range(GRANTED):
                    pool.submit(query, url, consumer, i)
            enough.wait(timeout=120)
            # The burst is still in flight: SIGKILL the whole server, no clean shutdown.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        assert enough.is_set(), "the burst was not acknowledged in time"

    with server(home) as (url, _process):
        wait_healthy(url, _process)
        provider = {"Authorization": f"Bearer {tokens['provider']}"}
        listed = httpx.get(f"{url}/v1/access/grants?limit=500", headers=provider).json()
    states = {item["id"]: item["state"] for item in listed["items"]}
    for grant_id in acknowledged_grants:
        assert states.get(grant_id) == "granted", grant_id

    node = Node.open(Settings(home=home))
    try:
        assert Ledger(node.db).check() == []
        with node.db.read() as session:
            granted_rows = set(session.scalars(select(Grant.id).where(Grant.state == "granted")))
            ledger_rows = session.scalar(select(LedgerEntry.id).limit(1))
        assert {int(g.removeprefix("GRANT-")) for g in acknowledged_grants} <= granted_rows
        assert ledger_rows is not None
        log = node.log
        for answer in acknowledged_queries:
            receipt = answer["receipt"]
            assert isinstance(receipt, dict)
            entry = receipt["log"]
            assert isinstance(entry, dict)
            index = int(entry["index"])
            assert index < log.size
            assert log.entry_bytes(index) == entry["entry"].encode("utf-8")
        spent = {row.grant: row for row in Ledger(node.db).budgets()}
        for row in spent.values():
            assert abs(row.epsilon_granted - row.epsilon_spent - row.epsilon_left) < 1e-9
    finally:
        node.close()
