"""Private set intersection: entrepot against its own floor and against openmined-psi.

For two sets of link keys with 50% overlap, one run measures side by side:

- the floor: the group operations alone (per value one SHA-512 and hash to the group,
  one scalar multiplication by each holder's key) on every core, with nothing else;
- entrepot end to end: ``psi.intersect`` (canonicalize, shuffle, blind both sides,
  reblind, match) on a process pool made for the join;
- openmined-psi (GCS mode, one core: the library has no threads), in a subprocess.

Then one small side against one large side, where the cost should follow the rows
each side blinds. Wall time is what a user waits; CPU time (parent and workers)
holds better on a busy machine. Peak memory adds the parent's and every worker's.

    .venv/bin/python benchmarks/bench_psi.py                          # 1M × 1M, 10k × 10M
    .venv/bin/python benchmarks/bench_psi.py --size 100000 --large 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pysodium

from entrepot.privacy import psi

CONCEPT = "resident-number"
BATCH = psi.BATCH_SIZE
TICK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def values(count: int, offset: int) -> np.ndarray:
    """``count`` distinct resident numbers; the sets of offsets o and o + k share all but k."""
    # Multiplying by a prime modulo 10^10 is a bijection: distinct, scattered numbers.
    numbers = (np.arange(offset, offset + count, dtype=np.int64) * 7919 + 12345) % 10**10
    return np.char.add("ZR", np.char.zfill(numbers.astype(str), 10))


def _proc(pid: int) -> tuple[float, int]:
    """CPU seconds and peak resident kB of a live process."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return (int(fields[11]) + int(fields[12])) / TICK, peak


@dataclass
class Usage:
    wall: float = 0.0
    cpu: float = 0.0
    peak_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def measured(pool: ProcessPoolExecutor | None) -> Iterator[Usage]:
    """Wall, CPU (parent + pool workers) and peak memory (parent + workers) of a block."""
    usage = Usage()
    start, cpu = time.perf_counter(), time.process_time()
    yield usage
    usage.wall = time.perf_counter() - start
    usage.cpu = time.process_time() - cpu
    workers = [_proc(pid) for pid in (pool._processes if pool is not None else {})]
    usage.cpu += sum(c for c, _ in workers)
    parent_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    usage.peak_mb = (parent_kb + sum(p for _, p in workers)) / 1024


def _floor_batch(key: bytes, other: bytes, batch: list[str]) -> int:
    for value in batch:
        digest = hashlib.sha512(value.encode()).digest()
        token = pysodium.crypto_scalarmult_ristretto255(
            key, pysodium.crypto_core_ristretto255_from_hash(digest)
        )
        pysodium.crypto_scalarmult_ristretto255(other, token)
    return len(batch)


def floor(sides: list[np.ndarray]) -> Usage:
    """The group operations of a join and nothing else, on every core."""
    key, other = (pysodium.crypto_core_ristretto255_scalar_random() for _ in range(2))
    batches = [s[i : i + BATCH].tolist() for s in sides for i in range(0, len(s), BATCH)]
    pool = psi.make_pool()
    # Start the fork server and every worker before the clock, as entrepot's run does.
    list(pool.map(int, range(2 * (os.cpu_count() or 1))))
    with measured(pool) as usage:
        done = sum(pool.map(_floor_batch, [key] * len(batches), [other] * len(batches), batches))
    pool.shutdown()
    assert done == sum(len(s) for s in sides)
    return usage


def _progress(label: str) -> Callable[[int, int], None]:
    shown = [-1]

    def show(done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth != shown[0]:
            shown[0] = tenth
            print(f"  {label}: {10 * tenth:3d}%  load {load()}", file=sys.stderr, flush=True)

    return show


def entrepot(left: np.ndarray, right: np.ndarray, expected: int) -> Usage:
    """``psi.intersect`` end to end, its pool started for this join."""
    with measured(None) as started:
        pool = psi.make_pool()
        list(pool.map(int, range(2 * (os.cpu_count() or 1))))
    with measured(pool) as usage:
        found = psi.intersect(left, right, CONCEPT, pool=pool, progress=_progress("entrepot"))
    pool.shutdown()
    assert len(found) == expected, (len(found), expected)
    usage.extra["pool_start_s"] = started.wall
    return usage


def openmined(client: int, server: int, offset: int, python: str) -> Usage | None:
    """openmined-psi in a subprocess of its own (it pins its own protobuf)."""
    command = [python, __file__, "--openmined-child", str(client), str(server), str(offset)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(f"openmined-psi did not run: {run.stderr.strip()[-400:]}", file=sys.stderr)
        return None
    report = json.loads(run.stdout)
    return Usage(report["wall"], report["cpu"], report["peak_kb"] / 1024, report)


def _openmined_child(client_size: int, server_size: int, offset: int) -> None:
    import private_set_intersection.python as om

    client_items = values(client_size, 0).tolist()
    server_items = values(server_size, offset).tolist()
    start, cpu = time.perf_counter(), time.process_time()
    server = om.server.CreateWithNewKey(True)
    client = om.client.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(client_items), server_items, om.DataStructure.GCS)
    response = server.ProcessRequest(client.CreateRequest(client_items))
    found = client.GetIntersection(setup, response)
    report = {
        "wall": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "matched": len(found),
        "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "version": om.__version__,
    }
    print(json.dumps(report))


def _row(name: str, u: Usage, base: Usage) -> str:
    return (
        f"| {name} | {u.wall:.1f} | {u.wall / base.wall:.2f} | {u.cpu:.1f} | "
        f"{u.cpu / base.cpu:.2f} | {u.peak_mb:,.0f} |"
    )


def symmetric(size: int, python: str | None) -> None:
    left, right = values(size, 0), values(size, size // 2)
    expected = size - size // 2
    print(f"\n{size:,} × {size:,}, overlap {expected:,}; load before {load()}")
    base = floor([left, right])
    print(f"  floor done; load {load()}", file=sys.stderr)
    ours = entrepot(left, right, expected)
    theirs = openmined(size, size, size // 2, python) if python else None
    print(f"load after {load()}")
    print("| | wall s | × floor | CPU s | × floor CPU | peak MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(_row("floor: hash to group + 2 scalar mults, all cores", base, base))
    print(_row("entrepot psi.intersect, all cores", ours, base))
    if theirs is not None:
        assert theirs.extra["matched"] == expected, theirs.extra
        print(_row(f"openmined-psi {theirs.extra['version']} GCS, one core", theirs, base))
        print(
            f"entrepot is {theirs.wall / ours.wall:.2f}× faster than openmined-psi in wall "
            f"time, {theirs.cpu / ours.cpu:.2f}× in CPU time"
        )
    print(
        f"entrepot / floor: {ours.wall / base.wall:.2f} wall, {ours.cpu / base.cpu:.2f} CPU; "
        f"pool start {ours.extra['pool_start_s'] * 1000:.0f} ms; "
        f"CPU per blinded row {ours.cpu / (2 * size) * 1e6:.0f} µs"
    )


def asymmetric(small: int, large: int) -> None:
    left, right = values(small, 0), values(large, small // 2)
    expected = small - small // 2
    print(f"\n{small:,} × {large:,}, overlap {expected:,}; load before {load()}")
    base = floor([left, right])
    ours = entrepot(left, right, expected)
    print(f"load after {load()}")
    print("| | wall s | × floor | CPU s | × floor CPU | peak MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(_row("floor", base, base))
    print(_row("entrepot psi.intersect", ours, base))
    print(f"CPU per blinded row {ours.cpu / (small + large) * 1e6:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="rows per side (symmetric)")
    parser.add_argument("--small", type=int, default=10_000, help="the small side")
    parser.add_argument("--large", type=int, default=10_000_000, help="the large side")
    parser.add_argument("--no-openmined", action="store_true", help="skip openmined-psi")
    parser.add_argument(
        "--openmined-python",
        default=sys.executable,
        help="a Python that can import openmined-psi (default: this one)",
    )
    parser.add_argument("--openmined-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.openmined_child:
        _openmined_child(*args.openmined_child)
        return
    print(f"cores {os.cpu_count()}; load {load()}; batch {BATCH}")
    if args.size:
        symmetric(args.size, None if args.no_openmined else args.openmined_python)
    if args.small and args.large:
        asymmetric(args.small, args.large)


if __name__ == "__main__":
    main()
