"""A flood of refused private queries from one account, against a real server on loopback.

    python benchmarks/query_flood.py                         # 40 attackers, 20 s
    python benchmarks/query_flood.py --seconds 5 --queries 10    # quick

Builds a node in a temporary home (one provider, one dataset with the default policy
and its 250 ms latency floor, a consumer holding a grant and an intruder holding none),
serves it with ``entrepot serve`` on a free loopback port with the default settings
(one query process on this 2-core machine), then:

1. unloaded: the consumer runs ``--queries`` private queries one after the other;
2. flood: ``--attackers`` concurrent tasks send the intruder's queries on the same
   dataset (each refused: no grant) until ``--seconds`` pass or ``--max-requests`` were
   sent, while the consumer runs ``--queries`` queries one after the other again.

Prints one table with the bar and PASS/FAIL, what the intruder got back and how many
refusals reached the public log, and the machine's load average before and after.
Bar: the consumer's p50 during the flood ≤ 2× its unloaded p50. Every connection
stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx

from auth_flood import serve, write_visits
from entrepot import standards
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.contracts import Contracts
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import LocalVault
from entrepot.vault.protocol import PublishRequest
from entrepot.vault.providers import add_provider

DATASET = "riverside-hospitals/outpatient-visits"
SQL = (
    "SELECT district, COUNT(*) AS visits FROM riverside_hospitals.outpatient_visits "
    "GROUP BY district"
)


def seed(home: Path) -> tuple[str, str]:
    """The node; returns the consumer's and the intruder's tokens."""
    node = Node.init(Settings(home=home))
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    source = write_visits(home / "visits.csv", 20_000)
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
    accounts = Accounts(node.db, node.settings, log=node.log)
    _info, consumer = accounts.create(LOCAL, "bureau", "consumer")
    _info, intruder = accounts.create(LOCAL, "intruder", "consumer")
    contracts = Contracts(node.db, node.settings, log=node.log)
    request = contracts.request(
        accounts.actor("bureau"),
        DATASET,
        purpose="public-health-surveillance",
        epsilon=5.0,
        until=date.today() + timedelta(days=30),
    )
    contracts.grant(accounts.actor("riverside-hospitals"), request.ref, epsilon=5.0)
    node.close()
    return consumer.secret, intruder.secret


async def consumer_queries(client: httpx.AsyncClient, count: int, offset: int) -> list[float]:
    """``count`` queries one after the other; distinct ε, so none repeats a paid answer."""
    latencies = []
    for i in range(count):
        body = {"sql": SQL, "epsilon": 0.01 + (offset + i) * 1e-6}
        started = time.perf_counter()
        response = await client.post("/v1/queries", json=body)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"the consumer's query failed: {response.text}")
    return latencies


async def intruder(
    client: httpx.AsyncClient, until: float, budget: int, statuses: Counter[int]
) -> None:
    while time.perf_counter() < until and statuses.total() < budget:
        response = await client.post("/v1/queries", json={"sql": SQL, "epsilon": 0.01})
        statuses[response.status_code] += 1


async def measure(url: str, tokens: tuple[str, str], args: argparse.Namespace) -> dict:
    consumer_token, intruder_token = tokens
    statuses: Counter[int] = Counter()
    async with (
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {consumer_token}"}, timeout=120
        ) as consumer,
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {intruder_token}"},
            timeout=120,
            limits=httpx.Limits(max_connections=args.attackers),
        ) as attacker,
    ):
        await consumer.get("/v1/me")
        await attacker.get("/v1/me")
        await consumer_queries(consumer, 3, 0)  # warm the query process
        unloaded = await consumer_queries(consumer, args.queries, 100)
        until = time.perf_counter() + args.seconds
        flood = [
            asyncio.create_task(intruder(attacker, until, args.max_requests, statuses))
            for _ in range(args.attackers)
        ]
        await asyncio.sleep(0.5)  # the flood is on before the first measured query
        loaded = await consumer_queries(consumer, args.queries, 1000)
        await asyncio.gather(*flood)
    return {"unloaded": unloaded, "loaded": loaded, "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--max-requests", type=int, default=20_000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "node"
        tokens = seed(home)
        url, process = serve(home)
        try:
            figures = asyncio.run(measure(url, tokens, args))
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        node = Node.open(Settings(home=home))
        refusals = sum(
            1 for _, entry in node.log.search(kind="query") if entry.get("outcome") == "refused"
        )
        node.close()
    unloaded = statistics.median(figures["unloaded"]) * 1000
    loaded = statistics.median(figures["loaded"]) * 1000
    ratio = loaded / unloaded
    statuses = ", ".join(f"{n} × {code}" for code, n in sorted(figures["statuses"].items()))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    print("| figure | value | bar | |")
    print("| --- | --- | --- | --- |")
    print(f"| consumer's query p50, unloaded | {unloaded:.0f} ms | | |")
    print(f"| consumer's query p50, during the flood | {loaded:.0f} ms | | |")
    print(f"| ratio | {ratio:.2f}× | ≤ 2× | {'PASS' if ratio <= 2 else 'FAIL'} |")
    print(f"| intruder's answers ({args.attackers} at once, {args.seconds:g} s) | {statuses} | | |")
    print(f"| refusals in the public log | {refusals} | | |")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.exit(0 if ratio <= 2 else 1)


if __name__ == "__main__":
    main()
