"""Transparency log speed: batched appends, proofs at size n, full offline verification.

Appends n realistic query entries in batches (each batch durable: fsync'd; the
entries are built and encoded by make_entry beforehand, timed on their own), then
times inclusion and consistency proofs at size n and a full verification of an
export. Baselines, run on the same entries in the same run: appending them to
SQLite (WAL, synchronous=FULL, one transaction per batch) and computing a proof by
rehashing every leaf (what a log without stored subtree hashes must do).

    python benchmarks/bench_log.py                  # 1M entries
    python benchmarks/bench_log.py --rows 20000     # a quick run
"""

from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from nacl.signing import SigningKey

from entrepot.transparency import (
    Entry,
    QueryOpening,
    TransparencyLog,
    make_entry,
    verify_export,
)
from entrepot.transparency.merkle import (
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

SEED = 9162
# Bars from the log's requirements.
BAR_APPENDS_PER_S = 20_000
BAR_PROOF_MS = 5.0
BAR_VERIFY_S = 30.0
T = TypeVar("T")
DATASETS = [f"provider-{p}/dataset-{d}" for p in range(20) for d in range(5)]


def entries(count: int, batch: int) -> Iterator[list[Entry]]:
    rng = random.Random(SEED)
    nonce = rng.randbytes(32)  # seeded: the benchmark writes the same log every run
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, batch):
        yield [
            make_entry(
                "query",
                f"consumer-{rng.randrange(500)}",
                dataset=rng.choice(DATASETS),
                purpose="capacity planning",
                epsilon=rng.choice((0.05, 0.1, 0.25)),
                time=start + timedelta(milliseconds=first + i),
                outcome="accepted",
                query_commitment=QueryOpening(f"SELECT {first + i}", nonce).commitment,
                answer_commitment=QueryOpening("", nonce).answer_commitment(b"%d" % (first + i)),
            )
            for i in range(min(batch, count - first))
        ]


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def naive_inclusion(leaves: list[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) recomputing every subtree hash from the leaves (RFC 9162 §2.1.3.1)."""

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index < lo + k:
            path.append(mth(lo + k, hi))
            hi = lo + k
        else:
            path.append(mth(lo, lo + k))
            lo += k
    return path[::-1]


def clocked(run: Callable[[], T]) -> tuple[T, float, float]:
    """The result, wall-clock ms and this process's CPU ms (the machine may be shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def cpu_s() -> float:
    """CPU seconds of this process and its reaped children (verification uses workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median(samples: list[tuple[float, float]], column: int) -> float:
    return statistics.median(s[column] for s in samples)


def p99(samples: list[tuple[float, float]], column: int) -> float:
    values = sorted(s[column] for s in samples)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="entries to append")
    parser.add_argument("--batch", type=int, default=10_000, help="entries per durable batch")
    parser.add_argument("--proofs", type=int, default=200, help="proofs to time")
    args = parser.parse_args()
    n = args.rows
    rng = random.Random(SEED)

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        log = TransparencyLog(root / "log", SigningKey(bytes(range(32))), head_every_entries=n)
        db = sqlite3.connect(root / "baseline.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")

        log_s = sqlite_s = build_s = 0.0
        batches = entries(n, args.batch)
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            build_s += time.perf_counter() - started
            if batch is None:
                break
            log_s += timed(lambda batch=batch: log.append_many(batch))  # type: ignore[misc]
            rows = [(e.to_bytes(),) for e in batch]

            def insert(rows: list[tuple[bytes]] = rows) -> None:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO entries (data) VALUES (?)", rows)
                db.execute("COMMIT")

            sqlite_s += timed(insert)
        db.close()
        head = log.sign_head()
        assert head.size == n

        indices = [rng.randrange(n) for _ in range(args.proofs)]
        inclusion: list[tuple[float, float]] = []
        for index in indices:
            proof, wall, cpu = clocked(lambda index=index: log.prove(index, n))  # type: ignore[misc]
            inclusion.append((wall, cpu))
            verify_inclusion(leaf_hash(proof.entry), index, n, proof.path, head.root)
        consistency: list[tuple[float, float]] = []
        for size in [rng.randrange(1, n) for _ in range(args.proofs)]:
            change, wall, cpu = clocked(lambda size=size: log.consistency(size, n))  # type: ignore[misc]
            consistency.append((wall, cpu))
            verify_consistency(size, n, change.path, change.root1, head.root)

        leaves = [log.store.leaf(i) for i in range(n)]
        naive_ms = []
        for index in indices[:3]:
            started = time.perf_counter()
            path = naive_inclusion(leaves, index)
            naive_ms.append((time.perf_counter() - started) * 1000)
            assert path == log.prove(index, n).path
        del leaves

        log.export(root / "export")
        cpu_before = cpu_s()
        verify_s = timed(lambda: verify_export(root / "export", log.verify_key))
        verify_cpu_s = cpu_s() - cpu_before
        log.close()

    appends = n / log_s
    naive = statistics.median(naive_ms)
    table = [
        ("make_entry/s (canonical JSON)", n / build_s, None, ""),
        ("appends/s (batched, durable)", appends, n / sqlite_s, "SQLite WAL FULL"),
        ("inclusion proof ms (median)", median(inclusion, 0), naive, "rehash leaves"),
        ("inclusion proof ms (p99)", p99(inclusion, 0), max(naive_ms), "rehash leaves"),
        ("inclusion proof CPU ms (p99)", p99(inclusion, 1), None, ""),
        ("consistency proof ms (median)", median(consistency, 0), None, ""),
        ("consistency proof ms (p99)", p99(consistency, 0), None, ""),
        ("consistency proof CPU ms (p99)", p99(consistency, 1), None, ""),
        ("offline verification s", verify_s, None, ""),
        ("offline verification CPU s", verify_cpu_s, None, "all processes"),
    ]
    print(f"transparency log, {n:,} entries, batches of {args.batch:,}\n")
    print(f"| {'metric':<31} | {'entrepot':>12} | {'baseline':>12} | {'ratio':>8} | baseline |")
    print(f"|{'-' * 33}|{'-' * 14}|{'-' * 14}|{'-' * 10}|----------|")
    for name, ours, theirs, what in table:
        ratio = (
            ""
            if theirs is None
            else f"{(ours / theirs if 'appends' in name else theirs / ours):.1f}x"
        )
        other = "" if theirs is None else f"{theirs:,.2f}"
        print(f"| {name:<31} | {ours:>12,.2f} | {other:>12} | {ratio:>8} | {what} |")
    print("\nratio: how many times better entrepot is than the baseline")
    bars = [
        (appends >= BAR_APPENDS_PER_S, f"appends/s >= {BAR_APPENDS_PER_S:,}"),
        (p99(inclusion, 0) < BAR_PROOF_MS, f"inclusion proofs < {BAR_PROOF_MS} ms (p99)"),
        (p99(consistency, 0) < BAR_PROOF_MS, f"consistency proofs < {BAR_PROOF_MS} ms (p99)"),
        (verify_s < BAR_VERIFY_S, f"offline verification < {BAR_VERIFY_S} s"),
    ]
    for met, bar in bars:
        print(f"{'met ' if met else 'MISSED'} {bar}")


if __name__ == "__main__":
    main()
