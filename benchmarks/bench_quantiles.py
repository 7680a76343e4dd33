"""Private quantiles: a grouped MEDIAN against a grouped SUM, and against raw DuckDB.

Uses the seeded visits file of ``bench_query.py`` (made once into benchmarks/.data/,
with the per-unit columns a publish adds) and times, end to end in one process
(planning, engine, noise or selection, answer), the median of ``--repeat`` runs after
one warm-up of:

- ``sum``: ``SUM(cost)`` grouped by district (20 groups), then by district and
  diagnosis group (400 groups);
- ``median``: ``MEDIAN(cost)`` with the same groups: per group, OpenDP's private
  quantile selects two brackets where the group's noisy count is large enough for
  them, then the estimate (up to three calls over its values);

each with contribution bounding (``bounded``) and with one row per unit
(``one-row``); and raw DuckDB's exact ``median(cost)`` and ``sum(cost)`` on the same
file. The table gives each time and the ratios MEDIAN / SUM and entrepot / DuckDB.

    python benchmarks/bench_quantiles.py --rows 1M
    python benchmarks/bench_quantiles.py --rows 1M,10M --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import bench_query

GROUPINGS = {"district": "district", "district x diagnosis": "district, diagnosis_group"}


def timed(run: Any, repeat: int) -> float:
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(path: Path, counted: Path, repeat: int) -> list[tuple[str, str, str, float]]:
    import duckdb

    from entrepot.engine import DuckDBEngine, EngineOptions
    from entrepot.privacy import plan

    results = []
    con = duckdb.connect(config={"threads": bench_query.THREADS})
    options = EngineOptions(
        (counted.parent,),
        threads=bench_query.THREADS,
        memory_limit=bench_query.MEMORY_LIMIT,
        timeout_s=3600,
    )
    with DuckDBEngine(options) as engine, engine.session() as session:
        session.register_parquet("v", [counted])
        for grouping, keys in GROUPINGS.items():
            for function in ("sum", "median"):
                sql = f"SELECT {keys}, {function.upper()}(cost) FROM {bench_query.DATASET}"
                sql += f" GROUP BY {keys}"
                raw = sql.replace(bench_query.DATASET, f"read_parquet('{path}')")
                seconds = timed(lambda raw=raw: con.sql(raw).fetchall(), repeat)
                results.append((grouping, function, "duckdb", seconds))
                for mode, one_row in (("bounded", False), ("one-row", True)):
                    std = bench_query.standard(one_row)
                    p = plan(
                        sql,
                        standard=std,
                        policy=bench_query.policy(std),
                        epsilon=bench_query.EPSILON,
                        codes=bench_query.CODES,
                    )
                    seconds = timed(lambda p=p: p.run(session, "v"), repeat)
                    results.append((grouping, function, mode, seconds))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M", help="sizes, comma-separated (1M, 10M)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    console.print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for size in args.rows.split(","):
        rows = bench_query.parse_size(size)
        path = bench_query.generate(rows)
        counted, _, _ = bench_query.with_unit_columns(path)
        results = measure(path, counted, args.repeat)
        seconds = {(g, f, m): s for g, f, m, s in results}
        table = Table(title=f"{rows:,} rows, ε {bench_query.EPSILON:g}, median of {args.repeat}")
        for column in ("groups", "mode", "SUM s", "MEDIAN s", "MEDIAN / SUM", "MEDIAN / DuckDB"):
            table.add_column(column, justify="left" if column in ("groups", "mode") else "right")
        for grouping in GROUPINGS:
            for mode in ("duckdb", "bounded", "one-row"):
                total = seconds[(grouping, "sum", mode)]
                median = seconds[(grouping, "median", mode)]
                exact = seconds[(grouping, "median", "duckdb")]
                table.add_row(
                    grouping,
                    mode,
                    f"{total:.3f}",
                    f"{median:.3f}",
                    f"{median / total:.1f}×",
                    f"{median / exact:.1f}×",
                )
        console.print(table)


if __name__ == "__main__":
    main()
