"""Tumult Analytics' answers to the accuracy benchmark's queries (run in its own venv).

Reads the job from standard input as JSON (see ``bench_accuracy.baseline_job``): the
Parquet file, the queries with their public groups and the rows-per-patient bound
entrepot applied, the ε values and the repeats. The patient is the privacy unit
(``AddRowsWithID``); each query truncates to the same bound entrepot uses
(``MaxRowsPerID(R)``; distinct patients: one row per patient and group, in at most
``G`` groups) and is evaluated at each ε with pure DP, in rounds within the job's
``seconds`` (Spark is slow on a small, busy machine; see ``_rounds.py``). Prints one
JSON line: per query and ε, the answers of every repeat as ``[[key text..., value]]``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyspark.sql import SparkSession
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

from _rounds import in_rounds

# Columns the queries read; the others (the visit id, the per-unit columns a publish
# adds) only slow Tumult's truncation, which sorts rows by every column.
COLUMNS = ("patient_id", "visit_date", "district", "sex", "age_band", "diagnosis_group")
MEASURES = ("cost", "duration_hours")


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
    if function == "count_distinct":
        groups = max(query["spread"], 1)
        builder = builder.enforce(MaxGroupsPerID(groups)).enforce(MaxRowsPerGroupPerID(1))
    else:
        builder = builder.enforce(MaxRowsPerID(query["rows"]))
    keys = query["keys"]
    grouped = builder.groupby(keyset(keys, query["groups"])) if keys else builder
    if function in ("count", "count_distinct"):
        return grouped.count(name="v")
    low, high = query["bounds"]
    aggregate = {"sum": grouped.sum, "avg": grouped.average, "median": grouped.median}[function]
    return aggregate(column, low, high, name="v")


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

    def answer(query: dict[str, Any], epsilon: float) -> list[list[Any]]:
        frame = session.evaluate(build(query), PureDPBudget(epsilon)).toPandas()
        keys = query["keys"]
        return [[*(text(row[k]) for k in keys), float(row["v"])] for _, row in frame.iterrows()]

    results = in_rounds(job, answer)
    print(json.dumps({"results": results, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
