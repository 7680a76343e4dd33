"""Federation's costs: what the single-node query path pays, and what one signed message costs.

Measures, best of several rounds:

- the check every query now makes for a peer's table (a regular expression over the
  SQL text), on queries that name none: the only work federation adds to the
  single-node path;
- signing a request and checking it (PyNaCl Ed25519, SHA-256 of the body), without
  the nonce's database write; signing an answer and checking it;
- recording a nonce in the node's SQLite database (one write transaction).

Run: PYTHONPATH=src python benchmarks/bench_federation.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from nacl.signing import SigningKey

from entrepot.exchange import Exchange
from entrepot.exchange.node import Node
from entrepot.federation.envelope import (
    check_response,
    key_hex,
    open_request,
    sign_request,
    sign_response,
)
from entrepot.federation.remote import names_a_node
from entrepot.settings import Settings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
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
