"""The same private queries on DuckDB and on Spark: raw and bounded, side by side.

Uses bench_query's seeded visits file per size (made once into benchmarks/.data/, with
the per-unit columns a publish writes), and runs, in one child process per engine:

- ``raw``: the consumer's SQL on the engine, no privacy (through the engine's own
  session, so both engines run it under the same sandbox);
- ``bounded``: entrepot's private query (plan, per-unit weights, clamp, noise,
  answer), the ``grouped`` and ``filtered`` queries of bench_query.

Spark runs in local mode (``local[2]``, the node's two engine threads) with 6 GB of
driver memory; DuckDB with two threads and 6 GB. Times are the median of
``--repeat`` runs after one warm-up, in wall time, and in CPU time: the child's user +
system, with, for Spark, that of the JVM it starts (read from ``/proc``, so on Linux;
the peak RSS leaves the JVM's memory out). On a loaded machine the CPU ratio is the
steadier one.
The bar: Spark's privacy overhead (bounded / raw on Spark) ≤ 2×.

    python benchmarks/bench_engines.py --rows 1M --repeat 2      # quick
    python benchmarks/bench_engines.py --rows 10M,100M           # the recorded run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import bench_query as bq
from _children import load, run_child

ENGINES = ("duckdb", "spark")
BAR = 2.0


def cpu_seconds() -> float:
    """This process's CPU time with that of its running children (Spark's JVM)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[1]) == os.getpid():
            ticks += int(fields[11]) + int(fields[12])
    return bq.cpu_seconds() + ticks / os.sysconf("SC_CLK_TCK")


def child(engine_name: str, path: Path, repeat: int, query: str, bound: int) -> dict[str, Any]:
    import sqlglot

    from entrepot.engine import EngineOptions, get
    from entrepot.privacy import plan

    options = EngineOptions(
        (path.parent,), threads=bq.THREADS, memory_limit=bq.MEMORY_LIMIT, timeout_s=3600
    )
    std = bq.standard(False)
    pol = bq.policy(std)
    sql = bq.QUERIES[query]
    report: dict[str, Any] = {}
    with get(engine_name)(options) as engine, engine.session() as session:
        session.register_parquet("v", [path])
        raw_sql = sqlglot.transpile(
            sql.replace(bq.DATASET, "v"), read="duckdb", write=session.dialect
        )[0]
        for mode in ("raw", "bounded"):
            times, cpu, groups = [], [], 0
            for _ in range(repeat + 1):
                start, used = time.perf_counter(), cpu_seconds()
                if mode == "raw":
                    groups = session.execute(raw_sql).num_rows
                else:
                    planned = plan(
                        sql,
                        standard=std,
                        policy=pol,
                        epsilon=bq.EPSILON,
                        codes=bq.CODES,
                        estimate=bound,
                    )
                    groups = len(planned.run(session, "v").rows)
                times.append(time.perf_counter() - start)
                cpu.append(cpu_seconds() - used)
            report[mode] = {"times": times[1:], "cpu": cpu[1:], "groups": groups}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M", help="comma-separated sizes, e.g. 10M,100M")
    parser.add_argument("--queries", default="grouped,filtered")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--query", default="grouped", help=argparse.SUPPRESS)
    parser.add_argument("--bound", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, Path(args.path), args.repeat, args.query, args.bound)
        print(json.dumps(result))
        return

    print(f"load average before: {load()}", flush=True)
    rows = []
    for size in (bq.parse_size(s) for s in args.rows.split(",")):
        path, _seconds, _peak = bq.with_unit_columns(bq.generate(size))
        bound = bq.unit_bound(path)
        print(f"data: {size:,} rows, {path.name}, rows per unit bound {bound}", flush=True)
        for query in (q.strip() for q in args.queries.split(",")):
            for engine in ENGINES:
                command = [sys.executable, __file__, "--child", engine, "--path", str(path)]
                command += ["--query", query, "--repeat", str(args.repeat), "--bound", str(bound)]
                report, peak = run_child(command)
                rows.append((size, query, engine, report["raw"], report["bounded"], peak))
                print(f"  {query} {engine}: done, load average {load()}", flush=True)
    print(f"load average after: {load()}\n")
    # Both engines find the same groups in the data, and answer the same public groups.
    for size, query in {(s, q) for s, q, *_ in rows}:
        found = {
            (e, r["groups"], b["groups"]) for s, q, e, r, b, _p in rows if (s, q) == (size, query)
        }
        assert len({(g, a) for _e, g, a in found}) == 1, found
    print(
        f"{'rows':>12} {'query':>8} {'engine':>7} {'raw s':>8} {'bounded s':>10} "
        f"{'bounded/raw':>12} {'CPU b/r':>8} {'x duckdb (bounded)':>19} {'peak RSS':>9}"
    )
    duck = {(s, q): b for s, q, e, _r, b, _p in rows if e == "duckdb"}
    verdicts = []
    for size, query, engine, raw, bounded, peak in rows:
        r, b = statistics.median(raw["times"]), statistics.median(bounded["times"])
        cpu = statistics.median(bounded["cpu"]) / statistics.median(raw["cpu"])
        memory = f"{peak / 1024**3:>7.2f} GB" if engine == "duckdb" else f"{'—':>10}"
        versus = b / statistics.median(duck[size, query]["times"])
        print(
            f"{size:>12,} {query:>8} {engine:>7} {r:>8.2f} {b:>10.2f} {b / r:>12.2f} "
            f"{cpu:>8.2f} {versus:>19.2f} {memory}"
        )
        if engine == "spark":
            verdicts.append((size, query, b / r, cpu))
    for size, query, overhead, cpu in verdicts:
        met = "met" if overhead <= BAR else "MISSED"
        print(
            f"bar: Spark bounded / raw <= {BAR}x at {size:,} rows, {query}: {overhead:.2f}x {met} "
            f"(CPU {cpu:.2f}x)"
        )


if __name__ == "__main__":
    main()
