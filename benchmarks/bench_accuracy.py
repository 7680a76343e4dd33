"""Private answers against the truth: entrepot vs Tumult Analytics vs SmartNoise SQL.

Two datasets, both the ``health.visit`` standard on a real node (published, with the
policy the provider set): the demo's Riverside outpatient visits (``entrepot demo``,
about 30k rows, its policy: 2 groups per patient, groups under 50 hidden) and a seeded
file of ``--rows`` visits (default 1M) whose number of visits per patient is skewed
(lognormal rates: median 4, 1% above 60, up to ~450), published with a policy that
states its coverage and leaves the contribution bounds to their defaults (the rows per
patient a publish estimates privately).

Every query of :data:`QUERIES` (counts, sums, averages, medians and distinct patients;
no GROUP BY, by one and two dimensions and by month; with and without WHERE) is
planned as the exchange plans it (``AggregateQuery.price``, the dataset's policy and
latest version), its exact bounded aggregates computed once in the node's engine and
released ``--repeats`` times at each ε (fresh OpenDP noise each time: the same as
asking again, without spending a ledger). The truth is the same SQL on the raw data in
DuckDB. Reported per query and ε:

- the median relative error ``|answer - truth| / |truth|`` over every group present in
  the data and every repeat (a group not shown, or an average shown without a value,
  counts as an error of 1). For a COUNT or SUM whose answer puts back what bounding
  removed, entrepot's answer is each group's estimate with its part put back
  (``asked``);
- the share of entrepot's 95% intervals about the question asked that cover the truth
  (0 for a group absent from the data; an interval without a high end covers what lies
  above its low end): ``asked`` where every answer put the removed part back, ``asked
  k/n`` where k of n did (the others' intervals, about the bounded data, are tallied
  apart), ``(x%) bounded`` where none did (the answer's ``interval_of`` is "bounded
  data": about the data after contribution bounding). The bar holds where they cover
  in 90% of all cases pooled and no pair's coverage is below 90% beyond chance
  (:data:`BELOW_BAR`);
- phantom groups: groups absent from the data shown without the ``near_zero`` mark,
  of every showing of a group absent from the data.

Tumult Analytics (``tmlt.analytics``, PySpark) and SmartNoise SQL answer the same
questions at the same ε with the patient as privacy unit and the same rows-per-patient
bound entrepot applied to that query, each in its own virtual environment (made on
first use, see ``_children.py``), while entrepot answers; SmartNoise has no median
(n/a). Like entrepot, each computes a query's bounded data once and redraws only its
noise for every answer: Tumult evaluates each query once with ``Session.evaluate``
and redraws the noise steps of that evaluation for every repeat at each ε before it
evaluates the next query (``_tumult_child.py``),
SmartNoise reuses the engine's rows for each SQL text it sends. The ``answers``
column gives entrepot's, Tumult's and SmartNoise's answers per query and ε; a pair
counts against Tumult only where both gave at least :data:`MIN_ANSWERS`.

    python benchmarks/bench_accuracy.py                      # the recorded run
    python benchmarks/bench_accuracy.py --rows 100k --repeats 5 --baseline-repeats 2
    python benchmarks/bench_accuracy.py --datasets demo --skip-tumult
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from scipy.stats import binom

from _children import SNSQL, TUMULT, load, run_child

ROOT = Path(__file__).resolve().parent
DATA = ROOT / ".data" / "accuracy"
TABLE = "riverside_hospitals.outpatient_visits"
REF = "riverside-hospitals/outpatient-visits"
EPSILONS = (0.1, 0.5, 1.0)
DELTA = 1e-10
# The bars.
COVERAGE_BAR = 0.90
# A pair's coverage is below the bar when so few of its intervals cover the truth that
# intervals covering it 90% of the time would do so with less than this probability:
# a pair judged on a put-back given in 2 answers of 50 (12 intervals) is not below it
# with 10 covered, one judged on 1,000 intervals is with 880.
BELOW_BAR = 0.01
SHARE_BAR = 0.75
# A pair counts against Tumult only where both tools gave at least this many answers.
MIN_ANSWERS = 20
# The skewed dataset's policy: its coverage; contribution bounds are the defaults.
SKEWED_POLICY = """
epsilon:
  per_query: 1.0
  dataset_cap: 100000.0
latency_floor_ms: 0
coverage:
  visit_date: {from: 2025-01-01, to: 2025-12-31}
  district: {within: ["910000"]}
"""


@dataclass(frozen=True)
class Query:
    """One question: an aggregate of a measure (or rows), grouped and filtered."""

    name: str
    function: str  # count, count_distinct, sum, avg, median
    column: str | None = None
    keys: tuple[str, ...] = ()
    where: str | None = None
    smartnoise: bool = True

    @property
    def aggregate(self) -> str:
        return {
            "count": "COUNT(*)",
            "count_distinct": "COUNT(DISTINCT patient_id)",
            "sum": f"SUM({self.column})",
            "avg": f"AVG({self.column})",
            "median": f"MEDIAN({self.column})",
        }[self.function]

    def sql(self, *, literal_dates: bool = True) -> str:
        keys = [
            "date_trunc('month', visit_date) AS month" if k == "month" else k for k in self.keys
        ]
        where = self.where or ""
        if not literal_dates:  # SmartNoise reads no DATE literal: DuckDB casts the text
            where = where.replace("DATE '", "'")
        text = f"SELECT {', '.join([*keys, f'{self.aggregate} AS v'])} FROM {TABLE}"
        text += f" WHERE {where}" if where else ""
        text += f" GROUP BY {', '.join(self.keys)}" if self.keys else ""
        return text


SPRING = "visit_date >= DATE '2025-04-01'"
QUERIES = (
    Query("count", "count"),
    Query("sum cost", "sum", "cost"),
    Query("avg cost", "avg", "cost"),
    Query("median cost", "median", "cost", smartnoise=False),
    Query("patients", "count_distinct"),
    Query("count | women", "count", where="sex = 2"),
    Query("sum cost | since April", "sum", "cost", where=SPRING),
    Query("avg hours | resp.", "avg", "duration_hours", where="diagnosis_group = 'X'"),
    Query("count by district", "count", keys=("district",)),
    Query("sum cost by district", "sum", "cost", ("district",)),
    Query("avg cost by district", "avg", "cost", ("district",)),
    Query("median cost by district", "median", "cost", ("district",), smartnoise=False),
    Query("patients by district", "count_distinct", keys=("district",)),
    Query("count by month", "count", keys=("month",)),
    Query("avg cost by month", "avg", "cost", ("month",)),
    Query("count by district, sex", "count", keys=("district", "sex")),
    Query("sum cost by age, sex", "sum", "cost", ("age_band", "sex")),
    Query("avg cost by diagnosis, sex", "avg", "cost", ("diagnosis_group", "sex")),
    Query("count by diagnosis | men", "count", keys=("diagnosis_group",), where="sex = 1"),
    Query("count by month | 910101", "count", keys=("month",), where="district = '910101'"),
    Query("sum hours by age", "sum", "duration_hours", ("age_band",)),
    Query("median hours by age", "median", "duration_hours", ("age_band",), smartnoise=False),
    Query("avg cost by age | H1", "avg", "cost", ("age_band",), "visit_date < DATE '2025-07-01'"),
    Query("count by district, diagnosis", "count", keys=("district", "diagnosis_group")),
)


# -- datasets ---------------------------------------------------------------------------


@dataclass
class Dataset:
    """A published dataset on a node: its name, file, and what the exchange plans with."""

    label: str
    home: Path
    path: Path = field(default=Path())
    rows: int = 0


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 10**3, "M": 10**6}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)


def demo_dataset() -> Dataset:
    """The demo's exchange, built once with ``entrepot demo`` (its seeded data)."""
    home = DATA / "demo"
    built = home.with_suffix(".built")  # written once the whole demo was built
    if not built.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "entrepot", "demo", "--home", str(home), "--no-serve"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        built.touch()
    return Dataset("demo (Riverside visits)", home)


def skewed_dataset(rows: int) -> Dataset:
    """A node holding ``rows`` skewed visits, published with :data:`SKEWED_POLICY`."""
    from _skewed import write_visits
    from entrepot.exchange.accounts import Accounts
    from entrepot.exchange.catalog import publish_version
    from entrepot.exchange.node import Node
    from entrepot.exchange.policies import Policies
    from entrepot.settings import Settings
    from entrepot.standards import get
    from entrepot.vault import OnError, PublishRequest, add_provider

    home = DATA / f"skewed-{rows}"
    built = home.with_suffix(".built")  # written once published with its policy
    if not built.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        started = time.perf_counter()
        raw = write_visits(DATA / f"skewed-{rows}.csv", rows)
        node = Node.init(Settings(home=home))
        try:
            add_provider(node.db, "riverside-hospitals", "Riverside Hospitals")
            request = PublishRequest(
                provider="riverside-hospitals",
                standard=get("health.visit"),
                title="Outpatient visits 2025",
                on_error=OnError.REJECT,
                filename="visits.csv",
            )
            with raw.open("rb") as data:
                # as the CLI and the API publish: the rows-per-unit bound estimated too
                publish_version(node, request, data)
            accounts = Accounts(node.db, node.settings, log=node.log)
            provider = accounts.actor("riverside-hospitals")
            Policies(node).set(provider, REF, SKEWED_POLICY, where="the benchmark's policy")
        finally:
            node.close()
        raw.unlink()
        built.touch()
        print(f"published {rows:,} skewed visits in {time.perf_counter() - started:.0f} s")
    return Dataset(f"skewed, {rows:,} rows", home)


@contextmanager
def opened(dataset: Dataset) -> Iterator[tuple[Any, Any, Any]]:
    """The exchange of the dataset's node, the dataset as its coordinator finds it, and
    an engine session with its latest version attached (``dataset.path`` set)."""
    from entrepot.exchange.coordinator import Found
    from entrepot.exchange.facade import Exchange
    from entrepot.exchange.node import Node
    from entrepot.settings import Settings
    from entrepot.vault import DatasetRef

    node = Node.open(Settings(home=dataset.home))
    try:
        exchange = Exchange(node)
        ref = DatasetRef.parse(REF)
        version = exchange.vault.versions(ref)[-1]
        policy = exchange.policies.get(ref).policy
        found = Found(ref, policy, exchange.vault.standard(ref), version)
        with exchange.vault.engine().session() as session:
            attached = exchange.vault.attach(session, ref)
            # where the node keeps the version's file (the baselines read it there)
            dataset.path = (
                dataset.home / "vaults" / ref.provider / ref.dataset / (f"{version.number}.parquet")
            )
            assert dataset.path.is_file(), dataset.path
            dataset.rows = attached.rows
            yield found, session, attached.view
    finally:
        node.close()


# -- the truth and entrepot's answers ------------------------------------------------------


def key_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


Truth = dict[tuple[str, ...], float]


def truth(session: Any, view: str, query: Query) -> Truth:
    """The answer to the question asked: the same SQL on the raw rows, in DuckDB."""
    table = session.execute(query.sql().replace(TABLE, f'"{view}"'))
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    out: Truth = {}
    for row in zip(*columns, strict=True):
        if row[-1] is not None:
            out[tuple(key_text(v) for v in row[:-1])] = float(row[-1])
    return out


@dataclass
class Tally:
    """What one tool's answers to one query at one ε came to.

    ``covered`` of ``intervals`` count the intervals about the question asked (an
    ``asked`` estimate, or any interval of an answer on unbounded data), ``open`` of
    them without a high end (the units above the removed total's cap not ruled out)
    and ``closed_covered`` of the others covering it;
    ``bounded_covered`` of ``bounded`` those labelled as about bounded data. ``asked``
    counts the answers that put the removed part back, of ``answers`` in all.
    """

    errors: list[float] = field(default_factory=list)
    covered: int = 0
    intervals: int = 0
    open: int = 0
    closed_covered: int = 0
    bounded_covered: int = 0
    bounded: int = 0
    phantoms: int = 0
    empty: int = 0
    asked: int = 0
    failure: str = ""
    answers: int = 0

    @property
    def label(self) -> str:
        if self.asked == self.answers and self.answers:
            return "asked"
        if self.asked:
            return f"asked {self.asked}/{self.answers}"
        return "bounded" if self.bounded else "data"

    @property
    def error(self) -> float:
        return statistics.median(self.errors) if self.errors else math.nan

    @property
    def coverage(self) -> float:
        return self.covered / self.intervals if self.intervals else math.nan


def relative(value: float | None, true: float) -> float:
    if value is None:
        return 1.0
    return abs(value - true) / abs(true)


def entrepot_tally(plans: Any, exact: Any, true: Truth, query: Query, repeats: int) -> Tally:
    """Release the exact table ``repeats`` times and score every answer."""
    tally = Tally()
    counting = query.function in ("count", "count_distinct", "sum")
    for _ in range(repeats):
        answer = plans.release(*exact)
        tally.answers += 1
        tally.asked += any(row.asked and row.asked[0] for row in answer.rows)
        shown = {}
        for row in answer.rows:
            if row.other:
                continue
            key = tuple(key_text(k) for k in row.key)
            asked = row.asked[0] if row.asked else None
            judged = asked is not None or answer.interval_of != "bounded data"
            estimate = asked or row.values[0]
            shown[key] = estimate
            present = key in true
            if present or counting:
                high = math.inf if estimate.hi is None else estimate.hi
                hit = estimate.lo <= true.get(key, 0.0) <= high
                if judged:
                    tally.intervals += 1
                    tally.covered += hit
                    tally.open += estimate.hi is None
                    tally.closed_covered += hit and estimate.hi is not None
                else:
                    tally.bounded += 1
                    tally.bounded_covered += hit
            if not present:
                tally.empty += 1
                tally.phantoms += not row.near_zero
        for key, target in true.items():
            if target == 0:
                continue
            estimate = shown.get(key)
            tally.errors.append(relative(None if estimate is None else estimate.value, target))
    return tally


def baseline_tally(runs: Any, true: Truth) -> Tally:
    """Score a baseline's answers (a list per repeat of ``[key..., value]``)."""
    tally = Tally()
    if isinstance(runs, dict):
        tally.failure = runs.get("error", "n/a")
        return tally
    tally.answers = len(runs)
    for run in runs:
        shown = {tuple(row[:-1]): row[-1] for row in run}
        for key, target in true.items():
            if target != 0:
                tally.errors.append(relative(shown.get(key), target))
        tally.phantoms += sum(1 for key in shown if key not in true)
    return tally


# -- the baselines ---------------------------------------------------------------------


def baseline_job(
    dataset: Dataset, specs: list[dict[str, Any]], repeats: int, name: str, seconds: float
) -> dict[str, Any]:
    smartnoise = name == "smartnoise"
    return {
        "path": str(dataset.path),
        "rows": dataset.rows,
        "delta": DELTA,
        "epsilons": list(EPSILONS),
        "repeats": repeats,
        "seconds": seconds,
        "queries": [s for s in specs if s["sql"] is not None] if smartnoise else specs,
    }


def run_baseline(label: str, name: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run one baseline's child on one dataset; its results by query and ε."""
    env = TUMULT if name == "tumult" else SNSQL
    script = ROOT / ("_tumult_child.py" if name == "tumult" else "_snsql_child.py")
    started = time.perf_counter()
    report, _peak = run_child([str(env.python), str(script)], stdin=json.dumps(job))
    print(f"  {label}: {env.name} took {time.perf_counter() - started:.0f} s, load {load()}")
    results: dict[str, Any] = report["results"]
    return results


def run_baselines(
    jobs: list[tuple[str, str, dict[str, Any]]],
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every baseline child at once: each is mostly waiting on its engine, and the
    slowest (Tumult's Spark) sets the run's length either way."""
    for name in {name for _, name, _ in jobs}:
        (TUMULT if name == "tumult" else SNSQL).ensure()
    with ThreadPoolExecutor(max_workers=max(len(jobs), 1)) as pool:
        futures = {
            (label, name): pool.submit(run_baseline, label, name, job) for label, name, job in jobs
        }
        return {key: future.result() for key, future in futures.items()}


# -- one dataset -------------------------------------------------------------------------


@dataclass
class Line:
    query: Query
    epsilon: float
    tallies: dict[str, Tally]


@dataclass
class Bench:
    """One dataset's lines, and what its baselines need: the query specs and truths;
    ``pending`` holds each query's plans by ε and exact table until entrepot answers."""

    dataset: Dataset
    lines: list[Line]
    specs: list[dict[str, Any]]
    truths: dict[str, Truth]
    pending: list[tuple[Query, dict[float, Any], Any]] = field(default_factory=list)


def prepare(dataset: Dataset) -> Bench:
    """Plan every query, compute its exact bounded table once and the truth."""
    from entrepot.exchange.query import AggregateQuery

    bench = Bench(dataset, [], [], {})
    started = time.perf_counter()
    with opened(dataset) as (found, session, view):
        print(
            f"{dataset.label}: {dataset.rows:,} rows, rows per patient bounded by "
            f"{found.policy.rows_per_unit or 'auto'} (policy), the version's private estimate "
            f"{found.version.unit_bound}, load average {load()}",
            flush=True,
        )
        standard = found.standard
        for query in QUERIES:
            plans = {
                epsilon: AggregateQuery(query.sql(), epsilon)
                .price({found.ref: found})
                .operation.plan
                for epsilon in EPSILONS
            }
            first = plans[EPSILONS[0]]
            assert len({p.sql("v") for p in plans.values()}) == 1, "ε changes noise only"
            bench.pending.append((query, plans, first.exact(session, view)))
            bench.truths[query.name] = truth(session, view, query)
            bounds = standard.field(query.column).bounds if query.column else None
            bench.specs.append(
                {
                    "name": query.name,
                    "function": query.function,
                    "column": query.column,
                    "keys": list(query.keys),
                    "where": query.where,
                    "rows": first.rewrite.rows_per_unit,
                    "spread": first.rewrite.groups_per_unit,
                    "bounds": list(bounds) if bounds else None,
                    "groups": [[key_text(v) for v in g] for g in first.groups],
                    "sql": query.sql(literal_dates=False) if query.smartnoise else None,
                }
            )
    print(f"  plans, exact tables and the truth: {time.perf_counter() - started:.0f} s")
    return bench


def answer(bench: Bench, repeats: int) -> None:
    """entrepot's ``repeats`` answers to every query at every ε, scored."""
    started = time.perf_counter()
    for query, plans, exact in bench.pending:
        for epsilon, plan in plans.items():
            tally = entrepot_tally(plan, exact, bench.truths[query.name], query, repeats)
            bench.lines.append(Line(query, epsilon, {"entrepot": tally}))
    bench.pending.clear()
    print(f"  {bench.dataset.label}: entrepot's answers {time.perf_counter() - started:.0f} s")


def score(bench: Bench, name: str, results: dict[str, Any]) -> None:
    """Add a baseline's tallies to the lines of its dataset."""
    for line in bench.lines:
        runs = results.get(line.query.name, {}).get(str(line.epsilon))
        if runs is not None:
            line.tallies[name] = baseline_tally(runs, bench.truths[line.query.name])


# -- the report ------------------------------------------------------------------------


def figure(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def report(console: Console, label: str, lines: Sequence[Line]) -> None:
    table = Table(title=f"{label}: median relative error against the truth")
    columns = ("query", "ε", "entrepot", "Tumult", "SmartNoise", "coverage", "× Tumult", "answers")
    for column in columns:
        table.add_column(column, justify="left" if column == "query" else "right")
    for line in lines:
        ours = line.tallies["entrepot"]
        errors = {name: t.error for name, t in line.tallies.items()}
        tumult = errors.get("tumult", math.nan)
        ratio = ours.error / tumult if tumult and not math.isnan(tumult) else math.nan
        table.add_row(
            line.query.name,
            f"{line.epsilon:g}",
            figure(ours.error),
            figure(tumult),
            figure(errors.get("smartnoise", math.nan)),
            f"{ours.coverage:.0%} {ours.label}"
            if ours.intervals
            else f"({ours.bounded_covered / max(ours.bounded, 1):.0%}) bounded",
            "n/a" if math.isnan(ratio) else f"{ratio:.2f}",
            "/".join(
                str(line.tallies[name].answers) if name in line.tallies else "-"
                for name in ("entrepot", "tumult", "smartnoise")
            ),
        )
    console.print(table)


def bars(console: Console, lines: Sequence[Line]) -> bool:
    ours = [line.tallies["entrepot"] for line in lines]
    honest = [t for t in ours if t.intervals]
    low = [
        (line.query.name, line.epsilon, line.tallies["entrepot"])
        for line in lines
        if line.tallies["entrepot"].intervals
        and binom.cdf(
            line.tallies["entrepot"].covered, line.tallies["entrepot"].intervals, COVERAGE_BAR
        )
        < BELOW_BAR
    ]
    pooled = sum(t.covered for t in honest) / max(sum(t.intervals for t in honest), 1)
    worst_line = min(
        (line for line in lines if line.tallies["entrepot"].intervals),
        key=lambda line: line.tallies["entrepot"].coverage,
        default=None,
    )
    bounded = [t for t in ours if t.bounded]
    bounded_pooled = sum(t.bounded_covered for t in bounded) / max(
        sum(t.bounded for t in bounded), 1
    )
    met_coverage = not low and pooled >= COVERAGE_BAR
    worst = "n/a"
    if worst_line is not None:
        tally = worst_line.tallies["entrepot"]
        worst = (
            f"{tally.coverage:.1%} ({worst_line.query.name} ε {worst_line.epsilon:g}: "
            f"{tally.covered} of {tally.intervals})"
        )
    opened = sum(t.open for t in honest) / max(sum(t.intervals for t in honest), 1)
    closed = sum(t.intervals - t.open for t in honest)
    closed_pooled = sum(t.closed_covered for t in honest) / max(closed, 1)
    console.print(
        f"bar: intervals not labelled bounded-data cover the truth in >= {COVERAGE_BAR:.0%}: "
        f"{len(honest)} query-ε pairs, pooled {pooled:.1%} ({opened:.0%} of them with no high "
        f"end; those with one {closed_pooled:.1%}), worst {worst}; below "
        f"{COVERAGE_BAR:.0%} beyond chance (p < {BELOW_BAR:g}): {len(low)} -> "
        f"{'met' if met_coverage else 'MISSED'}"
        + (
            ""
            if not low
            else " ("
            + ", ".join(f"{n} ε {e:g}: {t.covered} of {t.intervals}" for n, e, t in low)
            + ")"
        )
    )
    console.print(
        f"     (intervals labelled bounded-data: in {len(bounded)} pairs, pooled coverage of "
        f"the truth {bounded_pooled:.1%}; reported, not judged)"
    )
    compared = [
        line
        for line in lines
        if "tumult" in line.tallies
        and min(line.tallies["tumult"].answers, line.tallies["entrepot"].answers) >= MIN_ANSWERS
        and not math.isnan(line.tallies["tumult"].error)
    ]
    wins = [
        line for line in compared if line.tallies["entrepot"].error <= line.tallies["tumult"].error
    ]
    share = len(wins) / len(compared) if compared else math.nan
    met_tumult = bool(compared) and share >= SHARE_BAR
    losses = [f"{line.query.name} ε {line.epsilon:g}" for line in compared if line not in wins]
    console.print(
        f"bar: median relative error <= Tumult's on >= {SHARE_BAR:.0%} of queries: "
        f"{len(wins)}/{len(compared)} ({share:.0%}) of the {len(compared)} of {len(lines)} "
        f"query-ε pairs where both gave >= {MIN_ANSWERS} answers -> "
        f"{'met' if met_tumult else 'MISSED'}" + (f"; lost: {', '.join(losses)}" if losses else "")
    )
    phantoms = sum(t.phantoms for t in ours)
    empty = sum(t.empty for t in ours)
    console.print(
        f"bar: no phantom group shown unmarked: {phantoms} of {empty} showings of empty "
        "groups unmarked -> "
        f"{'met' if phantoms == 0 else 'MISSED'}"
        + (
            ""
            if phantoms == 0
            else " ("
            + ", ".join(
                f"{line.query.name} ε {line.epsilon:g}: {line.tallies['entrepot'].phantoms}"
                for line in lines
                if line.tallies["entrepot"].phantoms
            )
            + ")"
        )
    )
    return met_coverage and met_tumult and phantoms == 0


def baseline_counts(benches: Sequence[Bench]) -> str:
    """How many answers each baseline gave per query and ε (fewest to most)."""
    counts: dict[str, list[int]] = {}
    for bench in benches:
        for line in bench.lines:
            for name, tally in line.tallies.items():
                if name != "entrepot" and tally.answers:
                    counts.setdefault(name, []).append(tally.answers)
    return (
        ", ".join(
            f"{name} {min(c)} to {max(c)} (median {statistics.median(c):g})"
            for name, c in counts.items()
        )
        or "none"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1M", help="rows of the skewed dataset, e.g. 100k")
    parser.add_argument("--repeats", type=int, default=50, help="answers per query and ε")
    parser.add_argument(
        "--baseline-repeats", type=int, default=None, help="theirs (default: --repeats)"
    )
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=900,
        help="a baseline begins no answer (Tumult: no query) after this many s (per dataset)",
    )
    parser.add_argument("--datasets", default="demo,skewed", help="of: demo, skewed")
    parser.add_argument("--skip-tumult", action="store_true")
    parser.add_argument("--skip-smartnoise", action="store_true")
    args = parser.parse_args()
    args.baseline_repeats = args.baseline_repeats or args.repeats
    console = Console(width=160)
    console.print(f"load average before: {load()}")
    started = time.perf_counter()
    benches = [
        prepare(demo_dataset() if name == "demo" else skewed_dataset(parse_size(args.rows)))
        for name in args.datasets.split(",")
    ]
    jobs = []
    for bench in benches:
        for name, skip, repeats in (
            ("tumult", args.skip_tumult, args.baseline_repeats),
            ("smartnoise", args.skip_smartnoise, args.baseline_repeats),
        ):
            if not skip:
                job = baseline_job(bench.dataset, bench.specs, repeats, name, args.baseline_seconds)
                jobs.append((bench.dataset.label, name, job))
    console.print(f"baselines: {len(jobs)} children at once, load average {load()}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # the baselines run while entrepot answers: each waits on its own engine
        baselines = pool.submit(run_baselines, jobs)
        for bench in benches:
            answer(bench, args.repeats)
        results = baselines.result()
    for bench in benches:
        for (label, name), found in results.items():
            if label == bench.dataset.label:
                score(bench, name, found)
        report(console, bench.dataset.label, bench.lines)
    console.print(f"load average after: {load()}; {time.perf_counter() - started:.0f} s in all")
    console.print(
        f"{len(QUERIES)} queries x ε {', '.join(f'{e:g}' for e in EPSILONS)}, "
        f"{args.repeats} answers each by entrepot; the baselines up to "
        f"{args.baseline_repeats}, begun within {args.baseline_seconds:.0f} s per dataset: "
        + baseline_counts(benches)
    )
    bars(console, [line for bench in benches for line in bench.lines])


if __name__ == "__main__":
    main()
