"""Private query speed: entrepot vs the same SQL in DuckDB vs SmartNoise SQL, same data.

Generates a seeded visits Parquet file per size (once, into benchmarks/.data/), adds
the per-unit columns a publish writes (``entrepot.engine.write_unit_columns``, timed
once, reported as the publish-time cost), then runs each query (``--queries``: the
grouped COUNT / SUM / AVG over 20 districts x 20 diagnosis groups, and the same with
a WHERE on a dimension and on the time column) on that same file as:

- ``duckdb``: the consumer's SQL straight on the file (no privacy: the baseline);
- ``one-row``: entrepot when the standard declares one row per unit (clamp + noise);
- ``bounded``: entrepot with contribution bounding (per-unit weights from the stored
  row counts, clamp, noise);
- ``bounded-old``: the same on the file without per-unit columns (a version
  published before them: units are counted at query time);
- ``row-number``: the naive bounding rewrite, ``row_number() <= k`` over a random
  order, for reference;
- ``smartnoise``: SmartNoise SQL over a DuckDB connection to the same file, same ε,
  with its per-person contribution limit enforced (``sample_max_ids: True``), at
  ``max_ids`` 5 and 15 (SmartNoise bounds rows per person, as entrepot does: the
  two bracket the bound the data gives entrepot, printed with the run), in its own
  virtual environment (``benchmarks/.venv-snsql``, it pins old dependencies), run as
  a subprocess; ``smartnoise-unenforced`` is its fastest setting, which bounds
  nothing (``sample_max_ids: False``), on a line of its own for reference only.

The bounded modes bound each unit by the data's own rows per unit, as a publish
does: the 95th percentile of the file's stored per-unit counts, released once with
OpenDP at ε 0.1 (``entrepot.privacy.bounds``) and printed; every child uses it.

Each run is a child process (its peak RSS is reported); times are the median of
``--repeat`` runs after one warm-up, end to end (planning, engine, noise, answer),
in wall time and in CPU time (the process's user + system time, all its threads):
on a machine other work loads, CPU time is the steadier measure of the work done.
A last child runs raw DuckDB and both entrepot modes taking turns in one process,
so that the ratios are also compared under the same CPU and cache conditions.
Planning (parse, check, price, rewrite, list groups, noise and post-processing) is
timed separately, in process, with the engine time left out.

    python benchmarks/bench_query.py --rows 1M              # quick
    python benchmarks/bench_query.py --rows 10M,100M         # the recorded run
    python benchmarks/bench_query.py --rows 2M --repeat 5 --skip-smartnoise --skip-row-number
    python benchmarks/bench_query.py --rows 10M --queries filtered --repeat 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _children import SNSQL, load, run_child

ROOT = Path(__file__).resolve().parent
DATA = ROOT / ".data"
DATASET = "riverside_hospitals.outpatient_visits"
THREADS = 2
MEMORY_LIMIT = "6GB"
EPSILON = 1.0
DELTA = 1e-9
# What a publish spends estimating rows per unit (the policy's default).
BOUND_EPSILON = 0.1
# Each unit has about this many visits: enough that bounding has work to do.
ROWS_PER_UNIT = 5
CODES: dict[str, list[Any]] = {
    "region.district": [f"D{i:02d}" for i in range(20)],
    "diagnosis_group": [chr(65 + i) for i in range(20)],
    "sex": [1, 2],
    "age_band": ["0-17", "18-64", "65+"],
}
_SELECT = (
    "SELECT district, diagnosis_group, COUNT(*) AS visits, SUM(cost) AS total, "
    f"AVG(cost) AS avg_cost FROM {DATASET}"
)
_GROUP = " GROUP BY district, diagnosis_group"
# The queries, by name: the grouped aggregate, and the same filtered on a dimension and
# on the time column (SmartNoise reads no DATE literal: it gets the text, cast by DuckDB).
QUERIES = {
    "grouped": _SELECT + _GROUP,
    "filtered": _SELECT + " WHERE sex = 1 AND visit_date >= DATE '2025-04-01'" + _GROUP,
}
SNSQL_QUERIES = {
    "grouped": QUERIES["grouped"],
    "filtered": _SELECT + " WHERE sex = 1 AND visit_date >= '2025-04-01'" + _GROUP,
}
# The share of rows the filter keeps: half the sexes, 275 days of 365.
FILTERED_SHARE = 0.5 * 275 / 365
# SmartNoise runs: (mode, max_ids, sample_max_ids). Enforced is the like-for-like one.
SNSQL_RUNS = (
    ("smartnoise", 5, True),
    ("smartnoise-15", 15, True),
    ("smartnoise-unenforced", 5, False),
)
# Bars the run is judged by (ratios to raw DuckDB, and to SmartNoise at 10M rows).
BARS = {
    "one-row": 1.3,
    "bounded": 4.0,
    "bounded-filtered": 2.5,
    "smartnoise_speedup": 5.0,
    "plan_ms": 10.0,
}


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def generate(rows: int) -> Path:
    """The seeded data file for ``rows`` rows (made once; values are hashes of the row)."""
    import duckdb

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"visits_{rows}.parquet"
    if path.exists():
        return path
    units = max(rows // ROWS_PER_UNIT, 1)
    partial = path.with_suffix(".tmp")
    con = duckdb.connect(config={"threads": THREADS, "memory_limit": MEMORY_LIMIT})
    con.execute(
        f"""COPY (
          SELECT 'V' || i AS visit_id,
                 'P-' || (hash(i, 1) % {units}) AS patient_id,
                 DATE '2025-01-01' + (hash(i, 2) % 365)::INTEGER AS visit_date,
                 'D' || lpad((hash(i, 3) % 20)::VARCHAR, 2, '0') AS district,
                 (1 + hash(i, 4) % 2)::BIGINT AS sex,
                 ['0-17', '18-64', '65+'][1 + (hash(i, 5) % 3)::INTEGER] AS age_band,
                 chr((65 + hash(i, 6) % 20)::INTEGER) AS diagnosis_group,
                 round((hash(i, 7) % 800000) / 100.0, 2) AS cost,
                 ((hash(i, 8) % 1200) / 100.0)::DOUBLE AS duration_hours
          FROM range({rows}) t(i)) TO '{partial}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"""
    )
    con.close()
    partial.rename(path)
    return path


def with_unit_columns(path: Path) -> tuple[Path, float, int]:
    """The file with the per-unit columns a publish adds (made once, in a child), the
    seconds and peak RSS adding them took (NaN and 0 when the file was there)."""
    counted = path.with_name(path.stem + "_units.parquet")
    if counted.exists():
        return counted, float("nan"), 0
    command = [sys.executable, __file__, "--child", "units", "--path", str(path)]
    report, peak = run_child(command)
    return counted, report["times"][0], peak


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def unit_bound(path: Path) -> int:
    """The rows-per-unit bound a publish would keep with ``path`` (its per-unit columns)."""
    import duckdb

    from entrepot.engine.units import UNIT_ROWS
    from entrepot.privacy.bounds import estimate_rows_per_unit

    found = duckdb.sql(
        f"SELECT {UNIT_ROWS}, count(*) // {UNIT_ROWS} FROM read_parquet('{path}') "
        f"WHERE {UNIT_ROWS} IS NOT NULL GROUP BY 1"
    ).fetchall()
    return estimate_rows_per_unit({int(n): int(u) for n, u in found}, BOUND_EPSILON).rows


def child_units(path: Path) -> dict[str, Any]:
    from entrepot.engine import write_unit_columns

    counted = path.with_name(path.stem + "_units.parquet")
    partial = counted.with_suffix(".tmp")
    started = time.perf_counter()
    write_unit_columns(path, partial, "patient_id", threads=THREADS, memory_limit=MEMORY_LIMIT)
    seconds = time.perf_counter() - started
    partial.rename(counted)
    return {"times": [seconds]}


def standard(one_row: bool) -> Any:
    from entrepot.standards.schema import parse_standard

    document = json.loads(
        (ROOT.parent / "src/entrepot/standards/schemas/health.visit.json").read_text()
    )
    document["entrepot:oneRowPerUnit"] = one_row
    return parse_standard(document, "health.visit")


def policy(std: Any) -> Any:
    from entrepot.privacy import parse_policy

    return parse_policy({"epsilon": {"per_query": EPSILON, "default": EPSILON}}, std)


# -- children: one configuration each, printing {"times": [...], ...} ------------------


def child_duckdb(path: Path, repeat: int, query: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(config={"threads": THREADS, "memory_limit": MEMORY_LIMIT})
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet('{path}')")
    sql = query.replace(DATASET, "v")
    times, cpu, rows = [], [], 0
    for _ in range(repeat + 1):
        start, used = time.perf_counter(), cpu_seconds()
        rows = len(con.sql(sql).fetchall())
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - used)
    return {"times": times[1:], "cpu": cpu[1:], "groups": rows}


def child_entrepot(
    path: Path, repeat: int, one_row: bool, query: str, bound: int
) -> dict[str, Any]:
    from entrepot.engine import DuckDBEngine, EngineOptions
    from entrepot.privacy import plan

    std = standard(one_row)
    pol = policy(std)
    options = EngineOptions(
        (path.parent,), threads=THREADS, memory_limit=MEMORY_LIMIT, timeout_s=3600
    )
    session = DuckDBEngine(options).session()
    session.register_parquet("v", [path])
    times, cpu, groups, total = [], [], 0, 0.0
    for _ in range(repeat + 1):
        start, used = time.perf_counter(), cpu_seconds()
        planned = plan(
            query, standard=std, policy=pol, epsilon=EPSILON, codes=CODES, estimate=bound
        )
        answer = planned.run(session, "v")
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds() - used)
        groups = len(answer.rows)
        total = sum(row.values[0].value for row in answer.rows)
    return {"times": times[1:], "cpu": cpu[1:], "groups": groups, "visits": total}


def child_interleaved(path: Path, repeat: int, query: str, bound: int) -> dict[str, Any]:
    """Raw DuckDB and both entrepot modes in one process, taking turns each round.

    Separate children see different CPU and cache conditions from one run to the
    next; taking turns in one process compares the three under the same ones.
    """
    import duckdb

    from entrepot.engine import DuckDBEngine, EngineOptions
    from entrepot.privacy import plan

    con = duckdb.connect(config={"threads": THREADS, "memory_limit": MEMORY_LIMIT})
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet('{path}')")
    raw_sql = query.replace(DATASET, "v")
    options = EngineOptions(
        (path.parent,), threads=THREADS, memory_limit=MEMORY_LIMIT, timeout_s=3600
    )
    session = DuckDBEngine(options).session()
    session.register_parquet("v", [path])
    setups = {mode: standard(mode == "one-row") for mode in ("one-row", "bounded")}
    times: dict[str, list[float]] = {"duckdb": [], "one-row": [], "bounded": []}
    cpu: dict[str, list[float]] = {mode: [] for mode in times}
    for _ in range(repeat + 1):
        start, used = time.perf_counter(), cpu_seconds()
        con.sql(raw_sql).fetchall()
        times["duckdb"].append(time.perf_counter() - start)
        cpu["duckdb"].append(cpu_seconds() - used)
        for mode, std in setups.items():
            start, used = time.perf_counter(), cpu_seconds()
            planned = plan(
                query,
                standard=std,
                policy=policy(std),
                epsilon=EPSILON,
                codes=CODES,
                estimate=bound,
            )
            planned.run(session, "v")
            times[mode].append(time.perf_counter() - start)
            cpu[mode].append(cpu_seconds() - used)
    return {
        **{mode: statistics.median(seconds[1:]) for mode, seconds in times.items()},
        **{f"{mode}-cpu": statistics.median(seconds[1:]) for mode, seconds in cpu.items()},
    }


def child_row_number(path: Path, repeat: int, query: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect(config={"threads": THREADS, "memory_limit": MEMORY_LIMIT})
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet('{path}')")
    where = query[query.index(" WHERE ") : query.index(_GROUP)] if " WHERE " in query else ""
    sql = (
        "SELECT district, diagnosis_group, COUNT(*), SUM(c), AVG(c) FROM ("
        "  SELECT district, diagnosis_group, least(greatest(cost, 0), 5000) AS c,"
        "         row_number() OVER (PARTITION BY patient_id ORDER BY r) AS rn"
        f"  FROM (SELECT *, random() AS r FROM v{where})) WHERE rn <= 5 GROUP BY 1, 2"
    )
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        con.sql(sql).fetchall()
        times.append(time.perf_counter() - start)
    return {"times": times[1:]}


SNSQL_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[9])
from _snsql_duckdb import connect, metadata, reader
path, repeat, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
epsilon, delta = float(sys.argv[3]), float(sys.argv[4])
max_ids, sample_max_ids = int(sys.argv[7]), sys.argv[8] == "true"
private = reader(connect(path), epsilon, delta, metadata(rows, max_ids, sample_max_ids))
sql = sys.stdin.read()
times, groups = [], 0
for _ in range(repeat + 1):
    start = time.perf_counter()
    groups = len(private.execute(sql)) - 1
    times.append(time.perf_counter() - start)
start = time.perf_counter()
for _ in range(20):
    private._get_reader(private.parse_query_string(sql))
plan_ms = (time.perf_counter() - start) / 20 * 1000
print(json.dumps({"times": times[1:], "groups": groups, "plan_ms": plan_ms}))
"""


def planning_ms(samples: int = 200) -> tuple[float, float]:
    """Mean ms of plan() (fresh ε each time, so no cached noise scale) and of release()."""
    import pyarrow as pa

    from entrepot.privacy import plan

    std = standard(False)
    pol = policy(std)
    exact = None
    start = time.perf_counter()
    for i in range(samples):
        p = plan(
            QUERIES["grouped"], standard=std, policy=pol, epsilon=EPSILON - i * 1e-6, codes=CODES
        )
    plan_ms = (time.perf_counter() - start) / samples * 1000
    keys = [list(g) for g in zip(*p.groups, strict=True)]
    exact = pa.table(
        {
            "__k0": keys[0],
            "__k1": keys[1],
            **{q.name: [100.0] * len(p.groups) for q in p.rewrite.quantities},
            # what bounding removed, beside each quantity that reports it
            **{
                f"{q.name}_removed": [0.0] * len(p.groups)
                for q in p.rewrite.quantities
                if getattr(q, "removed", 0.0)
            },
        }
    )
    start = time.perf_counter()
    for _ in range(samples // 4):
        p.release(exact)
    release_ms = (time.perf_counter() - start) / (samples // 4) * 1000
    return plan_ms, release_ms


def check_answers(size: int, query: str, results: dict[str, tuple[dict[str, Any], int]]) -> None:
    """Every public group answered, noisy totals near the true count, both paths agree."""
    share = FILTERED_SHARE if query == "filtered" else 1.0
    if size < 100_000:
        return  # the noise of 400 groups is then as large as the bounds checked below
    for mode in ("bounded", "bounded-old"):
        if mode in results:
            bounded = results[mode][0]
            assert bounded["groups"] == 400, "every public group is answered"
            # with ε = 1 the noisy total is far within 1% of the bounded count
            assert 0.5 * share * size < bounded["visits"] < 1.01 * share * size
    if "bounded-old" in results:
        # both paths bound the same way: their noisy totals differ by noise only
        gap = abs(results["bounded"][0]["visits"] - results["bounded-old"][0]["visits"])
        assert gap < 0.005 * size, "stored and counted unit rows agree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M", help="comma-separated sizes, e.g. 10M,100M")
    parser.add_argument("--queries", default="grouped,filtered", help="of: " + ", ".join(QUERIES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-smartnoise", action="store_true")
    parser.add_argument("--smartnoise-max-rows", default="10M", help="skip SmartNoise above")
    parser.add_argument("--skip-row-number", action="store_true")
    parser.add_argument("--skip-old", action="store_true", help="skip bounded-old")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--query", default="grouped", help=argparse.SUPPRESS)
    parser.add_argument("--bound", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        path, query = Path(args.path), QUERIES[args.query]
        report = {
            "duckdb": lambda: child_duckdb(path, args.repeat, query),
            "one-row": lambda: child_entrepot(path, args.repeat, True, query, args.bound),
            "bounded": lambda: child_entrepot(path, args.repeat, False, query, args.bound),
            "bounded-old": lambda: child_entrepot(path, args.repeat, False, query, args.bound),
            "row-number": lambda: child_row_number(path, args.repeat, query),
            "units": lambda: child_units(path),
            "interleaved": lambda: child_interleaved(path, args.repeat, query, args.bound),
        }[args.child]()
        print(json.dumps(report))
        return

    print(f"load average before: {load()}", flush=True)
    plan_ms, release_ms = planning_ms()
    print(f"planning: plan() {plan_ms:.2f} ms, noise + answer {release_ms:.2f} ms per query")
    table = []
    interleaved: dict[tuple[int, str], dict[str, float]] = {}
    queries = [q.strip() for q in args.queries.split(",")]
    for size in (parse_size(s) for s in args.rows.split(",")):
        started = time.perf_counter()
        plain = generate(size)
        print(f"data: {size:,} rows in {plain} ({time.perf_counter() - started:.0f} s)")
        path, seconds, peak = with_unit_columns(plain)
        made = f"{seconds:.1f} s, peak RSS {peak / 1024**3:.2f} GB" if peak else "an earlier run"
        print(f"per-unit columns (once, at publish): {made} -> {path.name}")
        bound = unit_bound(path)
        print(f"rows per unit: {bound} (the 95th percentile, released at ε {BOUND_EPSILON})")
        for query in queries:
            modes = ["duckdb", "one-row", "bounded"]
            modes += [] if args.skip_old else ["bounded-old"]
            modes += [] if args.skip_row_number else ["row-number"]
            results: dict[str, tuple[dict[str, Any], int]] = {}
            for mode in modes:
                source = plain if mode == "bounded-old" else path
                command = [sys.executable, __file__, "--child", mode, "--path", str(source)]
                command += ["--query", query, "--repeat", str(args.repeat), "--bound", str(bound)]
                results[mode] = run_child(command)
                print(f"  {query} {mode}: done, load average {load()}", flush=True)
            snsql_ok = SNSQL.exists() and size <= parse_size(args.smartnoise_max_rows)
            if not args.skip_smartnoise and snsql_ok:
                for mode, max_ids, enforced in SNSQL_RUNS:
                    command = [str(SNSQL.python), "-c", SNSQL_CHILD, str(path), str(args.repeat)]
                    # SmartNoise has no DuckDB reader: its PostgreSQL one over a DuckDB connection
                    command += [str(EPSILON), str(DELTA), str(size), "postgres"]
                    command += [str(max_ids), str(enforced).lower(), str(ROOT)]
                    results[mode] = run_child(command, stdin=SNSQL_QUERIES[query])
                    print(f"  {query} {mode}: done, load average {load()}", flush=True)
            command = [sys.executable, __file__, "--child", "interleaved", "--path", str(path)]
            command += ["--query", query, "--repeat", str(max(args.repeat, 5))]
            turns, _peak = run_child([*command, "--bound", str(bound)])
            interleaved[size, query] = turns
            raw = statistics.median(results["duckdb"][0]["times"])
            raw_cpu = statistics.median(results["duckdb"][0]["cpu"])
            for mode, (report, peak) in results.items():
                seconds = statistics.median(report["times"])
                cpu = statistics.median(report["cpu"]) if "cpu" in report else float("nan")
                table.append(
                    (size, query, mode, seconds, seconds / raw, cpu / raw_cpu, peak, report)
                )
            check_answers(size, query, results)
    print(f"load average after: {load()}")
    print()
    print(
        f"{'rows':>12} {'query':>8} {'mode':>21} {'seconds':>8} {'x duckdb':>9} "
        f"{'CPU x duckdb':>13} {'peak RSS':>10}"
    )
    for size, query, mode, seconds, ratio, cpu_ratio, peak, _ in table:
        print(
            f"{size:>12,} {query:>8} {mode:>21} {seconds:>8.3f} {ratio:>9.2f} "
            f"{cpu_ratio:>13.2f} {peak / 1024**3:>8.2f} GB"
        )
    print("\nthe same three in one process, taking turns (median seconds, x duckdb; CPU):")
    for (size, query), turns in interleaved.items():
        cpu = {mode: turns[f"{mode}-cpu"] / turns["duckdb-cpu"] for mode in ("one-row", "bounded")}
        print(
            f"{size:>12,} {query:>8} duckdb {turns['duckdb']:.3f}  "
            f"one-row {turns['one-row']:.3f} ({turns['one-row'] / turns['duckdb']:.2f}x, "
            f"CPU {cpu['one-row']:.2f}x)  "
            f"bounded {turns['bounded']:.3f} ({turns['bounded'] / turns['duckdb']:.2f}x, "
            f"CPU {cpu['bounded']:.2f}x)"
        )
    for size, query in interleaved:
        rows = {row[2]: row for row in table if row[0] == size and row[1] == query}
        for mode, max_ids, enforced in SNSQL_RUNS:
            if mode not in rows:
                continue
            speedup = rows[mode][3] / rows["bounded"][3]
            plan_sn = rows[mode][7].get("plan_ms", float("nan"))
            label = (
                f"SmartNoise, max_ids {max_ids}, limit enforced"
                if enforced
                else f"SmartNoise, max_ids {max_ids}, limit NOT enforced (reference only)"
            )
            print(
                f"{size:,} rows, {query}: entrepot (bounded) is {speedup:.1f}x faster than "
                f"{label}; SmartNoise planning {plan_sn:.0f} ms vs entrepot "
                f"{plan_ms + release_ms:.1f} ms"
            )
    print(
        f"bars: one-row <= {BARS['one-row']}x, bounded <= {BARS['bounded']}x duckdb, "
        f"filtered bounded <= {BARS['bounded-filtered']}x duckdb,"
    )
    print(
        f"      >= {BARS['smartnoise_speedup']}x SmartNoise (limit enforced) at 10M, "
        f"plan <= {BARS['plan_ms']} ms"
    )


if __name__ == "__main__":
    main()
