"""Federation's costs: what the single-node query path pays, and what one signed message costs.

Measures, best of several rounds:

- the check every query now makes for a peer's table (a regular expression over the
  SQL text), on queries that name none: the only work federation adds to the
  single-node path;
- signing a request and checking it (PyNaCl Ed25519, SHA-256 of the body), without
  the nonce's database write; signing an answer and checking it;
- recording a nonce in the node's SQLite database (one write transaction).

With ``--serve``, two real ``entrepot serve`` processes on loopback instead (node a
holds the data, node b's consumer asks it), for the two bars:

- a remote private query (b's consumer through b's API, answered by a, witnessed
  by b) costs at most 20 ms over the same query run on a by a's own consumer
  (a's API), medians of paired, interleaved calls;
- b pulls a catalog of 10,000 datasets (``--datasets``) from a in under 5 s, page by
  page; the pages are also built in-process on a, for their size and time.

Run: PYTHONPATH=src python benchmarks/bench_federation.py [--serve]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from nacl.signing import SigningKey

import bench_api
from entrepot.client.local import LocalClient
from entrepot.errors import PeerError
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import LOCAL
from entrepot.exchange.node import Node
from entrepot.federation.envelope import (
    check_response,
    key_hex,
    open_request,
    sign_request,
    sign_response,
)
from entrepot.federation.feed import catalog_feed, sync
from entrepot.federation.remote import names_a_node
from entrepot.settings import Settings

ENTREPOT = [sys.executable, "-m", "entrepot"]
SERVER_ENV = {
    **bench_api.SERVER_ENV,
    "ENTREPOT_TOKEN_HASH_MEMORY_KIB": "1024",
    "ENTREPOT_DEFAULT_DATASET_EPSILON_CAP": "1000000",
}

LOCAL_SQL = (
    "SELECT district, COUNT(*) AS n, AVG(cost) AS cost FROM riverside_hospitals.outpatient_visits "
    "WHERE visit_date >= DATE '2025-01-01' GROUP BY district"
)
BODY = b'{"consumer": "city-desk", "sql": "' + LOCAL_SQL.encode() + b'", "epsilon": 0.5}'


def best_us(work: Callable[[], object], calls: int, rounds: int) -> float:
    """The best round's time per call, in microseconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            work()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def serve(home: Path, name: str) -> tuple[str, subprocess.Popen[bytes]]:
    """``entrepot serve`` for ``home`` on a free loopback port, named ``name``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, **SERVER_ENV, "ENTREPOT_HOME": str(home), "ENTREPOT_NODE_NAME": name}
    process = subprocess.Popen(
        [*ENTREPOT, "serve", "--home", str(home), "--port", str(port), "--query-workers", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}healthz", timeout=1).status_code == 200:
                return url, process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"node {name} did not start")


def many_datasets(home: Path, count: int) -> None:
    """``count`` catalog entries on the node, copies of its one published dataset's rows
    (publishing that many files would measure publishing, not the feed)."""
    db = sqlite3.connect(home / "node.db")
    with db:
        columns = [c[1] for c in db.execute("PRAGMA table_info(datasets)") if c[1] != "id"]
        (first,) = db.execute("SELECT id FROM datasets").fetchone()
        picked = ", ".join(columns).replace("slug", "slug || '-' || :n")
        for n in range(count - 1):
            made = db.execute(
                f"INSERT INTO datasets ({', '.join(columns)}) SELECT {picked} FROM datasets "
                "WHERE id = :id",
                {"n": n, "id": first},
            ).lastrowid
            vcolumns = [c[1] for c in db.execute("PRAGMA table_info(versions)") if c[1] != "id"]
            chosen = ", ".join(":d" if c == "dataset_id" else c for c in vcolumns)
            db.execute(
                f"INSERT INTO versions ({', '.join(vcolumns)}) SELECT {chosen} FROM versions "
                "WHERE dataset_id = :id",
                {"d": made, "id": first},
            )
    db.close()


def served(args: argparse.Namespace) -> None:
    """The two bars, on two ``entrepot serve`` processes."""
    print(f"uptime before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        home_a, home_b = Path(tmp) / "a", Path(tmp) / "b"
        home_a.mkdir()
        tokens = bench_api.seed(home_a, args.rows, 1)
        node_b = Node.init(Settings(home=home_b, node_name="b", token_hash_memory_kib=1024))
        _, issued = Exchange(node_b).accounts.create(LOCAL, "city-desk", "consumer")
        node_b.close()
        url_a, process_a = serve(home_a, "a")
        url_b, process_b = serve(home_b, "b")
        try:
            node_a, node_b = Node.open(Settings(home=home_a)), Node.open(Settings(home=home_b))
            a, b = Exchange(node_a), Exchange(node_b)
            b.peers.add(url_a, key_hex(node_a.verify_key))
            a.peers.add(url_b, key_hex(node_b.verify_key))
            asked = LocalClient(b, b.actor("city-desk")).request_access(
                f"a:{bench_api.DATASET}",
                purpose=bench_api.PURPOSE,
                epsilon=1000,
                until=date.today() + timedelta(days=30),
            )
            LocalClient(a, a.actor("riverside-hospitals")).grant_access(asked["id"], epsilon=1000)
            local, remote = paired(url_a, tokens[1], url_b, issued.secret, args.repeats)
            median_local, median_remote = statistics.median(local), statistics.median(remote)
            print(f"{'local query on a, median (ms)':45s} {median_local * 1e3:10.2f}")
            print(f"{'remote query b -> a, median (ms)':45s} {median_remote * 1e3:10.2f}")
            print(
                f"{'added by federation (ms; bar <= 20)':45s} "
                f"{(median_remote - median_local) * 1e3:10.2f}"
            )
            node_a.close()
            many_datasets(home_a, args.datasets)
            reopened = Node.open(Settings(home=home_a))
            pages, size, cursor, more = 0, 0, None, True
            started, cpu = time.perf_counter(), time.process_time()
            while more:
                page = catalog_feed(Exchange(reopened), cursor)
                size = max(size, len(json.dumps(page, sort_keys=True)))
                pages, cursor, more = pages + 1, page["entrepot:cursor"], page["entrepot:more"]
            built, built_cpu = time.perf_counter() - started, time.process_time() - cpu
            reopened.close()
            label = f"feed of {args.datasets} datasets"
            print(f"{label + ': pages':45s} {pages:10d}")
            print(f"{label + ': largest page (MB)':45s} {size / 1e6:10.2f}")
            print(f"{label + ': built in-process (s)':45s} {built:10.2f}")
            print(f"{label + ': built, CPU (s)':45s} {built_cpu:10.2f}")
            started, cpu = time.perf_counter(), time.process_time()
            try:
                pulled = sync(b, "a")
            except PeerError as error:
                print(f"sync of {args.datasets} datasets failed: {error.message}")
            else:
                took, took_cpu = time.perf_counter() - started, time.process_time() - cpu
                label = f"sync of {pulled['updated']} datasets"
                print(f"{label + ' (s; bar < 5)':45s} {took:10.2f}")
                print(f"{label + ', CPU of b (s)':45s} {took_cpu:10.2f}")
            node_b.close()
        finally:
            for process in (process_a, process_b):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
    print(f"uptime after: {os.getloadavg()}")


def paired(
    url_a: str, token_a: str, url_b: str, token_b: str, repeats: int
) -> tuple[list[float], list[float]]:
    """The same query, alternately on a by a's consumer and on a through b by b's."""
    local, remote = [], []
    sql = bench_api.SQL
    remote_sql = sql.replace("FROM riverside_hospitals", "FROM a.riverside_hospitals")
    with (
        httpx.Client(base_url=url_a, headers=_bearer(token_a), timeout=120) as on_a,
        httpx.Client(base_url=url_b, headers=_bearer(token_b), timeout=120) as on_b,
    ):
        for i in range(repeats + 2):
            epsilon = 0.01 + i * 1e-6  # distinct, so no answer is a free repeat
            started = time.perf_counter()
            on_a.post("/v1/queries", json={"sql": sql, "epsilon": epsilon}).raise_for_status()
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            answer = on_b.post("/v1/queries", json={"sql": remote_sql, "epsilon": epsilon})
            remote_elapsed = time.perf_counter() - started
            answer.raise_for_status()
            if i >= 2:  # the first calls warm the token caches and connections
                local.append(elapsed)
                remote.append(remote_elapsed)
    return local, remote


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help="the bars, on two serve processes")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--datasets", type=int, default=10_000)
    args = parser.parse_args()
    if args.serve:
        served(args)
        return
    sender, recipient = SigningKey.generate(), SigningKey.generate()
    now = datetime.now(UTC)
    trusted = key_hex(sender.verify_key)

    def round_trip() -> object:
        headers = sign_request(
            sender, recipient.verify_key, "POST", "/federation/v1/query", BODY, now=now
        )
        return open_request(
            headers,
            "POST",
            "/federation/v1/query",
            BODY,
            recipient=recipient.verify_key,
            trusted=lambda key: key == trusted,
            fresh=lambda _key, _nonce: True,
            now=now,
            max_skew_s=300,
        )

    def answer() -> None:
        signature = sign_response(recipient, "ab" * 16, 200, BODY)
        check_response("b", recipient.verify_key, "ab" * 16, 200, BODY, signature)

    figures = {
        "peer-table check on a local query (µs)": best_us(
            lambda: names_a_node(LOCAL_SQL), args.calls * 10, args.rounds
        ),
        "sign + check a request (µs)": best_us(round_trip, args.calls, args.rounds),
        "sign + check an answer (µs)": best_us(answer, args.calls, args.rounds),
    }
    with tempfile.TemporaryDirectory() as home:
        node = Node.init(Settings(home=Path(home) / "node"))
        peers = Exchange(node).peers
        counter = iter(range(10**9))
        figures["record a nonce in SQLite (µs)"] = best_us(
            lambda: peers.fresh(trusted, f"{next(counter):032x}"), args.calls // 10, args.rounds
        )
        node.close()
    for name, value in figures.items():
        print(f"{name:45s} {value:10.2f}")


if __name__ == "__main__":
    main()
