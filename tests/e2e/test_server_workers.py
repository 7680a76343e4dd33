"""`entrepot serve --workers 4 --db postgresql://...` holds the budget invariant.

Forty consumers, each with a grant, fire the same 0.1-ε query at once against a
dataset whose global cap is 1.0 ε: across four worker processes exactly ten answers
may come back, the other thirty refused by the dataset budget, and the ledger must
add up to the cap to the nano-ε.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from test_server import server

from entrepot import standards
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.privacy.ledger import Ledger
from entrepot.settings import Settings
from entrepot.vault import LocalVault
from entrepot.vault.protocol import PublishRequest
from entrepot.vault.providers import add_provider

DATASET = "riverside-hospitals/outpatient-visits"
SQL = "SELECT district, COUNT(*) AS n FROM riverside_hospitals.outpatient_visits GROUP BY district"
CONSUMERS = 40


def seed(home: Path, db: str) -> list[str]:
    settings = Settings(home=home, db=db, token_hash_memory_kib=1024)
    node = Node.init(settings)
    accounts, contracts = (
        Accounts(node.db, settings, log=node.log),
        Contracts(node.db, settings, log=node.log),
    )
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    lines = ["visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost"]
    lines += [
        f"V{i:05d},P-{i % 97:04d},2025-03-{i % 28 + 1:02d},910101,1,15-24,I,{i % 500}.5"
        for i in range(400)
    ]
    source = home / "visits.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with source.open("rb") as data:
        published = LocalVault.of(node).publish(
            PublishRequest(
                provider="riverside-hospitals",
                standard=standards.get("health.visit"),
                title="Outpatient visits",
                dataset="outpatient-visits",
            ),
            data,
        )
    provider = accounts.actor("riverside-hospitals")
    tokens = []
    for i in range(CONSUMERS):
        name = f"bureau-{i}"
        tokens.append(accounts.create(LOCAL, name, "consumer")[1].secret)
        request = contracts.request(
            accounts.actor(name),
            DATASET,
            purpose="public-health-surveillance",
            epsilon=1,
            until=date.today() + timedelta(days=30),
        )
        grant = contracts.grant(provider, request.ref, epsilon=1)
    Ledger(node.db).set_cap(grant.dataset_id, 1.0, actor="test")
    assert published.version.rows == 400
    node.close()
    return tokens


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_on_postgresql_never_overspend_the_cap(tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "node"
    tokens = seed(home, pg_url)
    # Forty new tokens at once: their checks queue for a slot, longer than the default
    # wait on a loaded machine; admission of checks is not under test here.
    env = {
        **os.environ,
        "ENTREPOT_TOKEN_HASH_MEMORY_KIB": "1024",
        "ENTREPOT_AUTH_VERIFY_WAIT_S": "60",
    }

    def ask(url: str, token: str) -> httpx.Response:
        return httpx.post(
            f"{url}/v1/queries",
            json={"sql": SQL, "epsilon": 0.1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )

    workers = ("--workers", "4", "--db", pg_url)
    with (
        server(home, *workers, env=env, wait_s=120) as (url, _process),
        ThreadPoolExecutor(max_workers=CONSUMERS) as pool,
    ):
        responses = list(pool.map(lambda token: ask(url, token), tokens))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10, statuses
    refused = [r.json()["error"] for r in responses if r.status_code != 200]
    assert {(e["code"], e.get("budget")) for e in refused} == {("budget_exhausted", "dataset")}, [
        e for e in refused if e["code"] != "budget_exhausted"
    ]

    node = Node.open(Settings(home=home, db=pg_url))
    try:
        ledger = Ledger(node.db)
        assert ledger.check() == []
        spent = sum(row.epsilon_spent for row in ledger.budgets())
        assert spent == pytest.approx(1.0, abs=1e-9)
    finally:
        node.close()
