"""Fixed cost of a private query's engine: one engine per query vs one session per query.

A node holds one engine and opens a session per query; before, it opened a whole
engine per query. This times what each way costs around the same small query
(register a version's view, read its column types, run the bounded aggregate, drop
everything), in CPU and wall time, on a 1,000-row file, so that the fixed cost is
not hidden behind the scan:

- ``engine-per-query``: open an engine (database, sandbox), one session, close both;
- ``session-per-query``: one session of an engine opened once.

    python benchmarks/bench_engine.py --repeat 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from entrepot.engine import DuckDBEngine, Engine, EngineOptions
from entrepot.privacy import Plan

# The node's defaults (Settings.engine_threads, Settings.engine_memory_limit).
THREADS = 2
MEMORY_LIMIT = "4GB"


def _plan() -> Plan:
    from bench_query import CODES, EPSILON, QUERIES, policy, standard
    from entrepot.privacy import plan

    std = standard(False)
    return plan(QUERIES["grouped"], standard=std, policy=policy(std), epsilon=EPSILON, codes=CODES)


def _query(engine: Engine, path: Path, planned: Plan) -> None:
    with engine.session() as session:
        session.register_parquet("v", [path])
        planned.run(session, "v")


def _time(step: Callable[[], None], repeat: int) -> tuple[float, float]:
    step()  # warm-up
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu) * 1000, statistics.median(wall) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    from bench_query import generate, with_unit_columns

    planned = _plan()
    path, _, _ = with_unit_columns(generate(1_000))
    options = EngineOptions((path.parent,), threads=THREADS, memory_limit=MEMORY_LIMIT)

    def engine_per_query() -> None:
        with DuckDBEngine(options) as engine:
            _query(engine, path, planned)

    with DuckDBEngine(options) as held:
        results = {
            "engine-per-query": _time(engine_per_query, args.repeat),
            "session-per-query": _time(lambda: _query(held, path, planned), args.repeat),
        }
    print(f"duckdb {duckdb.__version__}, {args.repeat} queries each, medians")
    print(f"{'mode':<20} {'CPU ms':>8} {'wall ms':>8}")
    for mode, (cpu, wall) in results.items():
        print(f"{mode:<20} {cpu:>8.2f} {wall:>8.2f}")


if __name__ == "__main__":
    main()
