"""A flood of wrong secrets for real token ids, against a real server on loopback.

    python benchmarks/auth_flood.py                         # 64 attackers, 20 s
    python benchmarks/auth_flood.py --seconds 5 --attackers 48   # quick

Builds a node in a temporary home (one provider, one dataset, a legitimate consumer
and ``--ids`` victim accounts whose token ids the attacker knows), serves it with
``entrepot serve`` on a free loopback port, with the default Argon2id cost (64 MiB
per check) and the default login limits, then:

1. idle: the server's RSS after the legitimate client's token is verified and a few
   searches ran;
2. flood: ``--attackers`` concurrent tasks (48 or more) send catalog searches with a
   known token id and a fresh random secret each time, from ``--addresses`` loopback
   addresses (127.0.0.2, ...), until ``--seconds`` pass or ``--max-requests`` were
   sent; meanwhile the legitimate client (127.0.0.1) searches one call after the
   other (20 a second at most) and the server's RSS is sampled every 50 ms. The
   server runs with every default setting.

Prints one table with the bars and PASS/FAIL, and the machine's load average before
and after. Bars: server RSS during the flood ≤ 2× idle; the legitimate search p99
< 100 ms. Every connection stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from entrepot import standards
from entrepot.exchange.accounts import LOCAL, Accounts
from entrepot.exchange.node import Node
from entrepot.settings import Settings
from entrepot.vault import LocalVault
from entrepot.vault.protocol import PublishRequest
from entrepot.vault.providers import add_provider

ENTREPOT = [sys.executable, "-m", "entrepot"]
SEARCHES = ("visits", "outpatient district", "hospital cost", "diagnosis")
DISTRICTS = ("910101", "910102", "910103", "910104")
# The legitimate client searches this often: a busy user, within the default rate limit.
LEGITIMATE_INTERVAL_S = 0.05


def write_visits(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("visit_id,patient_id,visit_date,district,sex,age_band,diagnosis_group,cost\n")
        for i in range(rows):
            out.write(
                f"V{i:08d},P-{i // 3:07d},2025-{i % 12 + 1:02d}-{i % 28 + 1:02d},"
                f"{DISTRICTS[i % 4]},{i % 2 + 1},00-04,I,{10 + i % 800}.00\n"
            )
    return path


def seed(home: Path, ids: int) -> tuple[str, list[str]]:
    """The node; returns the legitimate client's token and the victims' token ids."""
    node = Node.init(Settings(home=home))
    add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
    accounts = Accounts(node.db, node.settings, log=node.log)
    source = write_visits(home / "visits.csv", 2_000)
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
    _info, legitimate = accounts.create(LOCAL, "bureau", "consumer")
    victims = [
        accounts.create(LOCAL, f"victim-{i}", "consumer")[1].info.token_id for i in range(ids)
    ]
    node.close()
    return legitimate.secret, victims


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(home: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    process = subprocess.Popen(
        [*ENTREPOT, "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url, process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def rss_mib(pid: int) -> float:
    """Resident memory of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Sampler(threading.Thread):
    """The server's RSS every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.samples.append(rss_mib(self.pid))


@dataclass
class Flood:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def attacker(
    client: httpx.AsyncClient, ids: list[str], flood: Flood, until: float, budget: int
) -> None:
    while time.perf_counter() < until and flood.sent < budget:
        flood.sent += 1
        token = f"ent_{secrets.choice(ids)}_{secrets.token_urlsafe(32)}"
        try:
            response = await client.get(
                "/v1/catalog/search",
                params={"q": "visits"},
                headers={"Authorization": f"Bearer {token}"},
            )
            flood.statuses[response.status_code] += 1
        except httpx.HTTPError as error:
            flood.errors[type(error).__name__] += 1


async def legitimate(client: httpx.AsyncClient, until: float, latencies: list[float]) -> int:
    failures = 0
    i = 0
    while time.perf_counter() < until:
        i += 1
        started = time.perf_counter()
        response = await client.get("/v1/catalog/search", params={"q": SEARCHES[i % 4]})
        elapsed = time.perf_counter() - started
        latencies.append(elapsed)
        failures += response.status_code != 200
        await asyncio.sleep(max(0.0, LEGITIMATE_INTERVAL_S - elapsed))
    return failures


async def run_flood(
    url: str, token: str, ids: list[str], args: argparse.Namespace
) -> tuple[Flood, list[float], int]:
    flood, latencies = Flood(), list[float]()
    per_address = -(-args.attackers // args.addresses)
    async with (
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):
        clients = [
            httpx.AsyncClient(
                base_url=url,
                timeout=60,
                transport=httpx.AsyncHTTPTransport(
                    local_address=f"127.0.0.{2 + i}",
                    limits=httpx.Limits(max_connections=per_address),
                ),
            )
            for i in range(args.addresses)
        ]
        try:
            until = time.perf_counter() + args.seconds
            tasks = [
                attacker(clients[i % args.addresses], ids, flood, until, args.max_requests)
                for i in range(args.attackers)
            ]
            failures, *_ = await asyncio.gather(legitimate(client, until, latencies), *tasks)
        finally:
            for attacker_client in clients:
                await attacker_client.aclose()
    return flood, latencies, failures or 0


async def idle_searches(url: str, token: str, repeats: int) -> list[float]:
    timings = []
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        (await client.get("/v1/me")).raise_for_status()  # the token's one Argon2id check
        for i in range(repeats):
            started = time.perf_counter()
            (
                await client.get("/v1/catalog/search", params={"q": SEARCHES[i % 4]})
            ).raise_for_status()
            timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--attackers", type=int, default=64, help="concurrent flooding tasks")
    parser.add_argument("--addresses", type=int, default=4, help="loopback addresses they use")
    parser.add_argument("--ids", type=int, default=8, help="token ids the attacker knows")
    parser.add_argument("--max-requests", type=int, default=200_000, help="flood requests at most")
    args = parser.parse_args()
    if args.attackers < 48:
        raise SystemExit("the flood needs 48 attackers or more")
    if not 1 <= args.addresses <= 200:
        raise SystemExit("--addresses must be 1 to 200 (127.0.0.2 ...)")

    with tempfile.TemporaryDirectory(prefix="bench-auth-flood-") as tmp:
        home = Path(tmp) / "node"
        token, ids = seed(home, args.ids)
        url, server = serve(home)
        try:
            alone = asyncio.run(idle_searches(url, token, 200))
            time.sleep(1)
            idle = rss_mib(server.pid)
            sampler = Sampler(server.pid)
            load_before = os.getloadavg()
            sampler.start()
            flood, latencies, failures = asyncio.run(run_flood(url, token, ids, args))
            sampler.done.set()
            sampler.join()
            load_after = os.getloadavg()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)

    peak = max(sampler.samples, default=float("nan"))
    p50, p99 = quantile(latencies, 0.5) * 1000, quantile(latencies, 0.99) * 1000
    answered = sum(flood.statuses.values())
    print(
        f"auth_flood: {args.attackers} attackers from {args.addresses} address(es) on "
        f"{args.ids} known token ids, {args.seconds:g} s, default Argon2id (64 MiB) and limits"
    )
    print(
        f"load average (1/5/15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}"
    )
    rows = [
        ("server RSS idle MiB", f"{idle:.0f}", "", ""),
        (
            "server RSS peak in flood MiB",
            f"{peak:.0f}",
            f"<= {2 * idle:.0f} (2x idle)",
            "PASS" if peak <= 2 * idle else "FAIL",
        ),
        ("legitimate search p50 ms", f"{p50:.1f}", "", ""),
        ("legitimate search p99 ms", f"{p99:.1f}", "< 100", "PASS" if p99 < 100 else "FAIL"),
        (
            "legitimate searches (failed)",
            f"{len(latencies)} ({failures})",
            "0 failed",
            "PASS" if failures == 0 else "FAIL",
        ),
        (
            "search alone p50 / p99 ms",
            f"{quantile(alone, 0.5) * 1000:.1f} / {quantile(alone, 0.99) * 1000:.1f}",
            "",
            "",
        ),
        ("flood requests answered", f"{answered} ({answered / args.seconds:.0f}/s)", "", ""),
        ("  401 (one Argon2id check each)", str(flood.statuses.get(401, 0)), "", ""),
        ("  429 (no check)", str(flood.statuses.get(429, 0)), "", ""),
        (
            "  other statuses",
            str({k: v for k, v in flood.statuses.items() if k not in (401, 429)}),
            "",
            "",
        ),
        ("  transport errors", str(dict(flood.errors)), "", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("measure", "value", "bar", "result")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
