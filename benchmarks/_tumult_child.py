"""Tumult Analytics' answers to the accuracy benchmark's queries (run in its own venv).

Reads the job from standard input as JSON (see ``bench_accuracy.baseline_job``): the
Parquet file, the queries with their public groups and the rows-per-patient bound
entrepot applied, the ε values and the repeats. The patient is the privacy unit
(``AddRowsWithID``); each query truncates to the same bound entrepot uses
(``MaxRowsPerID(R)``; distinct patients: one row per patient, or per patient and
group in at most ``G`` groups) with pure DP.

One Spark session and one Tumult ``Session`` (budget unbounded, each answer asked at
its own ε) serve every query. ``Session.evaluate`` costs 15-150 s an answer on this
shared 2-core machine (Spark jobs for the truncation, the key set's checks, the
aggregate, and a table written per noise step), so each query is evaluated once, at
the largest ε, and its noise steps (``AddNoiseToColumn``; ``ApplyInPandas`` running
a median's ``NoisyQuantile`` on each group's rows) are kept with their inputs. Tumult
truncates by a hash of each row, so those inputs are the same at every evaluation;
each answer redraws the steps (the same measurements rebuilt at the answer's ε, their
privacy loss checked by Tumult's own privacy function to scale with ε) and applies
Tumult's post-processing (an AVG: the noisy sum of deviations from the bounds'
midpoint over the noisy count, at least 1, plus the midpoint). The answer rebuilt
from the evaluation's own noisy steps is checked to be the one ``Session.evaluate``
returned. Answers come query by query within the job's ``seconds`` (see
``_rounds.py``): every repeat of a query at every ε right after its evaluation, so
every query reached gets its full repeats (in rounds, with about 100 s an evaluation
under load, the budget ran out with one answer per query). No query is begun after
``seconds``; one begun is finished, but for medians, which come last and stop at
``seconds`` answer by answer: Tumult's exact exponential mechanism takes about 10 s
an answer at 30k rows. Prints one JSON line: per query and ε, the answers of every
repeat as ``[[key text..., value]]``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from tmlt.analytics import (
    AddRowsWithID,
    KeySet,
    MaxGroupsPerID,
    MaxRowsPerGroupPerID,
    MaxRowsPerID,
    PureDPBudget,
    QueryBuilder,
    Session,
)
from tmlt.core.measurements import spark_measurements
from tmlt.core.measurements.noise_mechanisms import AddGeometricNoise, AddLaplaceNoise
from tmlt.core.measurements.pandas_measurements.dataframe import AggregateByColumn
from tmlt.core.measurements.pandas_measurements.series import AddNoiseToSeries, NoisyQuantile
from tmlt.core.utils.exact_number import ExactNumber
from tmlt.core.utils.grouped_dataframe import GroupedDataFrame

from _rounds import query_by_query

# Columns the queries read; the others (the visit id, the per-unit columns a publish
# adds) only slow Tumult's truncation, which sorts rows by every column.
COLUMNS = ("patient_id", "visit_date", "district", "sex", "age_band", "diagnosis_group")
MEASURES = ("cost", "duration_hours")


@dataclass
class Step:
    """One noise step of a Tumult evaluation: the measurement, its input, its output.

    ``val`` is the input as Tumult gave it: a table (``AddNoiseToColumn``: the noise is
    added to one column) or a table grouped by keys (``ApplyInPandas``: an aggregation,
    such as a noisy quantile, run on each group's rows).
    """

    measurement: Any
    table: pd.DataFrame
    keys: pd.DataFrame | None
    output: pd.DataFrame


STEPS: list[Step] = []


def released(self: spark_measurements.SparkMeasurement, val: Any) -> DataFrame:
    """A Tumult noise step, its input and output kept (in :data:`STEPS`).

    Tumult's side-channel mitigation (shuffling the output to random partitions and
    writing it as a table) is replaced by collecting the output: the same answer.
    """
    grouped = isinstance(val, GroupedDataFrame)
    table = val.dataframe if grouped else val
    table = table.persist()
    noisy = self.call(val)
    rows = noisy.collect()
    keys = val.group_keys.toPandas() if grouped and val.group_keys is not None else None
    if grouped:
        columns = [*val.groupby_columns, *self.aggregation_function.input_domain.schema]
        table = table.select(*columns)
    output = pd.DataFrame([row.asDict() for row in rows], columns=noisy.columns)
    STEPS.append(Step(self, table.toPandas(), keys, output))
    table.unpersist()
    return noisy.sparkSession.createDataFrame(rows, noisy.schema)


spark_measurements.SparkMeasurement.__call__ = released  # type: ignore[method-assign]


def spark() -> Any:
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        # Spark would leave a spark-warehouse directory wherever it was started.
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="tumult-"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def keyset(keys: list[str], groups: list[list[Any]]) -> KeySet:
    """The public groups entrepot answers, as Tumult's key set (a product of axes)."""
    axes: dict[str, list[Any]] = {}
    for i, key in enumerate(keys):
        values = list(dict.fromkeys(group[i] for group in groups))
        if key == "month":
            values = [dt.date.fromisoformat(v) for v in values]
        elif key == "sex":
            values = [int(v) for v in values]
        axes[key] = values
    return KeySet.from_dict(axes)


def build(query: dict[str, Any]) -> Any:
    builder = QueryBuilder("v")
    if query["where"]:
        builder = builder.filter(query["where"])
    function, column = query["function"], query["column"]
    keys = query["keys"]
    if function == "count_distinct" and keys:
        (key,) = keys  # Tumult bounds the groups per patient along one column
        builder = builder.enforce(MaxGroupsPerID(key, max(query["spread"], 1)))
        builder = builder.enforce(MaxRowsPerGroupPerID(key, 1))
    elif function == "count_distinct":
        builder = builder.enforce(MaxRowsPerID(1))
    else:
        builder = builder.enforce(MaxRowsPerID(query["rows"]))
    grouped = builder.groupby(keyset(keys, query["groups"])) if keys else builder
    if function in ("count", "count_distinct"):
        return grouped.count(name="v")
    low, high = query["bounds"]
    aggregate = {"sum": grouped.sum, "avg": grouped.average, "median": grouped.median}[function]
    return aggregate(column, low, high, name="v")


def rebuilt(measurement: Any, scale: Fraction) -> Any:
    """The same Tumult noise step with its privacy loss times ``scale`` (its noise
    scale divided by it), checked by Tumult's own privacy function."""
    if isinstance(measurement, spark_measurements.AddNoiseToColumn):
        noise = measurement.measurement.noise_measurement
        if isinstance(noise, AddGeometricNoise):
            noise = AddGeometricNoise(alpha=noise.alpha / ExactNumber(scale))
        else:
            noise = AddLaplaceNoise(noise.input_domain, scale=noise.scale / ExactNumber(scale))
        step = spark_measurements.AddNoiseToColumn(
            measurement.input_domain, AddNoiseToSeries(noise), measurement.measure_column
        )
    else:
        aggregation = measurement.aggregation_function
        quantiles = {
            column: NoisyQuantile(
                q.input_domain,
                q.output_measure,
                q.quantile,
                q.lower,
                q.upper,
                epsilon=q.epsilon * ExactNumber(scale),
            )
            for column, q in aggregation.column_to_aggregation.items()
        }
        step = spark_measurements.ApplyInPandas(
            measurement.input_domain,
            measurement.input_metric,
            AggregateByColumn(aggregation.input_domain, quantiles),
        )
    wanted = measurement.privacy_function(1) * ExactNumber(scale)
    assert step.privacy_function(1) == wanted, (step.privacy_function(1), wanted)
    return step


def redraw(step: Step, measurement: Any) -> pd.DataFrame:
    """The step's output with fresh noise from ``measurement``, run in pandas on the
    step's kept input (as Tumult's Spark UDFs run it on each partition or group)."""
    if isinstance(measurement, spark_measurements.AddNoiseToColumn):
        out = step.table.copy()
        column = measurement.measure_column
        out[column] = measurement.measurement(out[column]).to_numpy()
        return out
    aggregation = measurement.aggregation_function
    columns = list(aggregation.input_domain.schema)
    if step.keys is None:
        return aggregation(step.table[columns])
    names = list(step.keys.columns)
    groups = dict(iter(step.table.groupby(names)))
    empty = step.table.iloc[:0]
    rows = []
    for key in step.keys.itertuples(index=False):
        rows_of = groups.get(key if len(names) > 1 else key[0], empty)
        values = aggregation(rows_of[columns])
        rows.append({**dict(zip(names, key, strict=True)), **values.iloc[0].to_dict()})
    return pd.DataFrame(rows)


def answered(query: dict[str, Any], outputs: list[pd.DataFrame]) -> list[list[Any]]:
    """Tumult's post-processing of its noisy steps: the value as is, or for an AVG the
    noisy sum of deviations from the bounds' midpoint over the noisy count (at least 1),
    plus the midpoint (``tmlt.core``'s ``create_average_measurement``)."""
    keys = query["keys"]
    if query["function"] == "avg":
        deviations, counts = sorted(outputs, key=lambda out: "count" in out.columns)
        merged = deviations.merge(counts, on=keys) if keys else deviations.join(counts)
        (sod,) = [c for c in deviations.columns if c not in keys]
        low, high = query["bounds"]
        values = merged[sod] / merged["count"].clip(lower=1) + (low + high) / 2
    else:
        (merged,) = outputs
        (value,) = [c for c in merged.columns if c not in keys]
        values = merged[value]
    return [
        [*(text(merged[k].iloc[i]) for k in keys), float(values.iloc[i])]
        for i in range(len(merged))
    ]


def same(ours: list[list[Any]], theirs: pd.DataFrame, keys: list[str]) -> bool:
    """Whether an answer rebuilt from the noisy steps is the one Tumult returned."""
    mine = {tuple(row[:-1]): row[-1] for row in ours}
    told = {tuple(text(row[k]) for k in keys): float(row["v"]) for _, row in theirs.iterrows()}
    return mine.keys() == told.keys() and all(
        abs(mine[k] - told[k]) <= 1e-9 * max(1.0, abs(told[k])) for k in told
    )


def main() -> None:
    job = json.loads(sys.stdin.read())
    started = time.perf_counter()
    frame = spark().read.parquet(job["path"])
    frame = frame.select(*COLUMNS, *MEASURES).withColumn(
        "month", sf.trunc("visit_date", "month").cast("date")
    )
    frame = frame.cache()
    frame.count()
    session = Session.from_dataframe(
        privacy_budget=PureDPBudget(float("inf")),
        source_id="v",
        dataframe=frame,
        protected_change=AddRowsWithID("patient_id"),
    )
    # One evaluation per query, at the largest ε; every answer redraws its noise.
    first = max(job["epsilons"])
    evaluated: dict[str, tuple[list[Step], list[list[Any]]]] = {}
    steps: dict[tuple[str, float], list[Any]] = {}

    def answer(query: dict[str, Any], epsilon: float) -> list[list[Any]]:
        name = query["name"]
        if name not in evaluated:
            STEPS.clear()
            theirs = session.evaluate(build(query), PureDPBudget(first)).toPandas()
            kept = list(STEPS)
            told = answered(query, [step.output for step in kept])
            assert same(told, theirs, query["keys"]), f"{name}: not Tumult's answer"
            evaluated[name] = kept, told
            if epsilon == first:
                return told
        kept, _ = evaluated[name]
        if (name, epsilon) not in steps:
            scale = Fraction(str(epsilon)) / Fraction(str(first))
            steps[name, epsilon] = [rebuilt(step.measurement, scale) for step in kept]
        outputs = [redraw(s, m) for s, m in zip(kept, steps[name, epsilon], strict=True)]
        return answered(query, outputs)

    # Tumult's median (an exact exponential mechanism, in Python) takes 10 s an answer
    # at 30k rows here, minutes at 1M: the other queries go first, and a median's
    # answers stop at the budget one by one.
    queries = job["queries"]
    results = query_by_query(
        {**job, "queries": [q for q in queries if q["function"] != "median"]}, answer
    )
    left = job["seconds"] - (time.perf_counter() - started)
    medians = [q for q in queries if q["function"] == "median"]
    results |= query_by_query(
        {**job, "queries": medians, "seconds": max(left, 0)}, answer, finish=False
    )
    print(json.dumps({"results": results, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
