"""Server time of every portal page, as each role, on the demo data.

    python benchmarks/bench_portal.py                  # the demo at scale 1, 40 runs a page
    python benchmarks/bench_portal.py --scale 0.1 --runs 10     # quick

Builds the demo exchange (``entrepot demo``'s data at ``--scale``) in a temporary home,
adds a provider account for Riverside Hospitals and an auditor, as the portal's tests
do, and serves the API app in-process (Starlette's TestClient, no socket). Each role
(anonymous, the demo's consumer, the provider, the auditor) signs in with its token
and asks for every page it can open, ``--runs`` times after ``--warmup`` runs, taking
turns page by page. Server time is measured around the app itself (an ASGI wrapper,
``time.perf_counter``: from the request's arrival to the response's last byte,
including the work in the thread pool); CPU time with ``time.process_time`` around
the whole request (the process's every thread, so the test client's share too: an
upper bound).

The baseline, in the same run and taking turns with the page, is the API route that
returns the same data as JSON to the same account (the catalog page against
``/v1/catalog/datasets``, and so on): the ratio is what rendering the page adds.

Bar: every page < 200 ms server time (p99).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from entrepot.api.app import create_app
from entrepot.demo import run as run_demo
from entrepot.exchange import Exchange, Node
from entrepot.exchange.accounts import LOCAL
from entrepot.settings import Settings

BAR_MS = 200.0
OWN = "riverside-hospitals/outpatient-visits"
TOKEN = re.compile(r'<meta name="csrf-token" content="([0-9a-f]{64})">')
# Accounts besides the demo's consumer: name -> (role, organization).
ACCOUNTS = {
    "riverside-admin": ("provider", "riverside-hospitals"),
    "log-auditor": ("auditor", ""),
    "node-operator": ("operator", ""),
}
CONSUMER = "lanshan-health-bureau"


class Timed:
    """The app, timing each HTTP request from its arrival to the response's last byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_s = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.last_s = time.perf_counter() - started


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def p50(self) -> float:
        return statistics.median(self.wall_ms)

    def p99(self) -> float:
        ordered = sorted(self.wall_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    def cpu50(self) -> float:
        return statistics.median(self.cpu_ms)


def build(home: Path, scale: float) -> dict[str, str]:
    """The demo exchange at ``home``, and a token per account that signs in."""
    run_demo(home, scale=scale, fresh=True)
    tokens = {CONSUMER: (home / "demo" / "consumer.token").read_text().strip()}
    node = Node.open(Settings(home=home))
    try:
        accounts = Exchange(node).accounts
        for name, (role, org) in ACCOUNTS.items():
            _info, issued = accounts.create(LOCAL, name, role, org=org or None)
            tokens[name] = issued.secret
    finally:
        node.close()
    return tokens


def sign_in(client: TestClient, token: str | None) -> str:
    """Sign ``client`` in with ``token`` (None: stay anonymous); the session's CSRF token."""
    found = TOKEN.search(client.get("/signin").text)
    assert found is not None, "the sign-in page has no CSRF token"
    if token is None:
        return found.group(1)
    answer = client.post(
        "/signin", data={"token": token, "csrf": found.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text[:300]
    found = TOKEN.search(client.get("/transparency").text)
    assert found is not None, "the transparency page has no CSRF token"
    return found.group(1)


def pages_of(role: str, datasets: list[str]) -> list[tuple[str, str | None]]:
    """(page, the API route with the same data) for each page ``role`` can open."""
    catalog = [
        ("/", "/v1/catalog/datasets"),
        ("/?q=visits+district", "/v1/catalog/search?q=visits+district"),
        ("/?region=910000&sector=Q", "/v1/catalog/datasets?region=910000&sector=Q"),
        *((f"/datasets/{ref}", f"/v1/catalog/datasets/{ref}") for ref in datasets),
        ("/transparency", "/v1/audit/entries?limit=100"),
        (f"/transparency?dataset={OWN}", f"/v1/audit/entries?limit=100&dataset={OWN}"),
        ("/portal/audit/proof/0", "/v1/audit/proofs/inclusion/0"),
    ]
    if role == "anonymous":
        return [("/signin", None), ("/", None), ("/transparency", None)]
    if role == "consumer":
        return [
            *catalog,
            ("/query", "/v1/budgets"),
            ("/usage", f"/v1/usage?month={date.today():%Y-%m}"),
            ("/usage.csv", None),
        ]
    if role == "provider":
        return [
            *catalog,
            ("/provider", "/v1/access/requests?pending=true"),
            (f"/provider/policy/{OWN}", f"/v1/policies/{OWN}"),
            ("/usage", f"/v1/usage?month={date.today():%Y-%m}"),
            ("/usage.csv", None),
        ]
    if role == "operator":
        return [
            *catalog,
            ("/?q=visits+district&nodes=all", "/v1/catalog/federated?q=visits+district"),
            ("/federation", None),
        ]
    return catalog


def measure(timed: Timed, ask: Callable[[], Any], into: Samples) -> None:
    cpu = time.process_time()
    answer = ask()
    into.cpu_ms.append((time.process_time() - cpu) * 1000)
    into.wall_ms.append(timed.last_s * 1000)
    assert answer.status_code in (200, 303), f"{answer.status_code}: {answer.text[:300]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="the demo's data size (1: ~150k rows)"
    )
    parser.add_argument("--runs", type=int, default=40, help="measured requests per page and role")
    parser.add_argument("--warmup", type=int, default=3, help="requests per page before measuring")
    options = parser.parse_args()
    console = Console(width=200)
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-portal-") as folder:
        home = Path(folder) / "exchange"
        started = time.perf_counter()
        with console.status(f"building the demo exchange at scale {options.scale}"):
            tokens = build(home, options.scale)
        built_s = time.perf_counter() - started
        # The rate limit would throttle one token's back-to-back requests: lifted here.
        settings = Settings(home=home, rate_limit_per_s=1e6, rate_limit_burst=10**6)
        timed = Timed(create_app(settings))
        roles = {
            "anonymous": None,
            "consumer": tokens[CONSUMER],
            "provider": tokens["riverside-admin"],
            "auditor": tokens["log-auditor"],
            "operator": tokens["node-operator"],
        }
        results: list[tuple[str, str, Samples, str | None, Samples | None]] = []
        with TestClient(timed) as lifespan:
            datasets = [
                d["dataset"]
                for d in lifespan.get(
                    "/v1/catalog/datasets", headers={"Authorization": f"Bearer {tokens[CONSUMER]}"}
                ).json()["items"]
            ]
            for role, token in roles.items():
                client = TestClient(timed)
                # The pages' scripts send the session's CSRF token with their calls.
                client.headers["X-CSRF-Token"] = sign_in(client, token)
                bearer = {"Authorization": f"Bearer {token}"}
                for page, api in pages_of(role, datasets):
                    shown, json = Samples(), Samples()
                    ask_page = partial(client.get, page, follow_redirects=False)
                    ask_api = partial(lifespan.get, str(api), headers=bearer)
                    for turn in range(options.warmup + options.runs):
                        keep = turn >= options.warmup
                        measure(timed, ask_page, shown if keep else Samples())
                        if api is not None:
                            measure(timed, ask_api, json if keep else Samples())
                    results.append((role, page, shown, api, json if api else None))
                client.close()

    load_after = os.getloadavg()
    table = Table(
        title=f"Portal server time per page (demo scale {options.scale}, "
        f"{options.runs} runs a page)"
    )
    for column in (
        "role",
        "page",
        "p50 ms",
        "p99 ms",
        "CPU p50 ms",
        "API route",
        "API p50 ms",
        "page / API",
        "< 200 ms",
    ):
        table.add_column(
            column, justify="left" if column in ("role", "page", "API route") else "right"
        )
    for role, page, shown, api, json in results:
        ratio = f"{shown.p50() / json.p50():.2f}×" if json is not None else "–"
        table.add_row(
            role,
            page,
            f"{shown.p50():.1f}",
            f"{shown.p99():.1f}",
            f"{shown.cpu50():.1f}",
            api or "–",
            f"{json.p50():.1f}" if json is not None else "–",
            ratio,
            "met" if shown.p99() < BAR_MS else "MISSED",
        )
    console.print(table)
    worst = max(results, key=lambda r: r[2].p99())
    console.print(
        f"demo built in {built_s:.1f} s; slowest page p99: {worst[1]} as {worst[0]}, "
        f"{worst[2].p99():.1f} ms (bar < {BAR_MS:.0f} ms: "
        f"{'met' if worst[2].p99() < BAR_MS else 'MISSED'}); load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )


if __name__ == "__main__":
    main()
