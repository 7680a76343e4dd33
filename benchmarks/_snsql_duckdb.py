"""SmartNoise SQL over DuckDB, for the benchmarks' SmartNoise children.

Imported only inside SmartNoise's own virtual environment (``benchmarks/.venv-snsql``,
see ``_envs.py``): SmartNoise has no DuckDB reader, so its PostgreSQL reader runs over
a DuckDB connection, DuckDB's SQL being close enough to PostgreSQL's. The dataset is
the view ``riverside_hospitals.outpatient_visits`` over a Parquet file.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import snsql
from snsql import Privacy

VIEW = "riverside_hospitals.outpatient_visits"
# DuckDB refuses ORDER BY RANDOM() inside a window (a volatile sort key): the random
# key moves into a column of an inner SELECT, at the same cost.
SAMPLED = re.compile(
    r"SELECT \*, ROW_NUMBER \( \) OVER \( PARTITION BY (\w+) ORDER BY RANDOM \( \) \) "
    r"AS row_num FROM \((.*)\) AS clamped \)"
)


def duckdb_sql(sql: str) -> str:
    return SAMPLED.sub(
        r"SELECT * EXCLUDE (__random), ROW_NUMBER() OVER (PARTITION BY \1 ORDER BY __random) "
        r"AS row_num FROM (SELECT *, random() AS __random FROM (\2) AS clamped) AS clamped )",
        sql,
    )


class Cursor:
    """The DB-API cursor SmartNoise's PostgreSQL reader drives; ``cache`` (a dict)
    keeps each distinct SQL text's rows, so a repeated query only redraws the noise."""

    def __init__(self, con: Any, cache: dict[str, Any] | None) -> None:
        self.con, self.cache = con, cache
        self.description: Any = None
        self.rows: list[Any] = []

    def execute(self, sql: str) -> None:
        if self.cache is not None and sql in self.cache:
            self.description, self.rows = self.cache[sql]
            return
        result = self.con.execute(duckdb_sql(sql))
        self.description, self.rows = result.description, result.fetchall()
        if self.cache is not None:
            self.cache[sql] = (self.description, self.rows)

    def __iter__(self) -> Any:
        return iter(self.rows)


class Connection:
    def __init__(self, con: Any, cache: dict[str, Any] | None = None) -> None:
        self.con, self.cache = con, cache

    def cursor(self) -> Cursor:
        return Cursor(self.con, self.cache)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def metadata(rows: int, max_ids: int, sample_max_ids: bool) -> dict[str, Any]:
    """SmartNoise's metadata for the visits: the patient is the private id, at most
    ``max_ids`` rows each (sampled down when ``sample_max_ids``), cost in [0, 5000]."""
    return {
        "": {
            "riverside_hospitals": {
                "outpatient_visits": {
                    "row_privacy": False,
                    "max_ids": max_ids,
                    "sample_max_ids": sample_max_ids,
                    "censor_dims": False,
                    "rows": rows,
                    "patient_id": {"type": "string", "private_id": True},
                    "district": {"type": "string"},
                    "diagnosis_group": {"type": "string"},
                    "age_band": {"type": "string"},
                    "sex": {"type": "int"},
                    "visit_date": {"type": "datetime"},
                    "cost": {"type": "float", "lower": 0.0, "upper": 5000.0, "nullable": False},
                    "duration_hours": {
                        "type": "float",
                        "lower": 0.0,
                        "upper": 12.0,
                        "nullable": False,
                    },
                }
            }
        }
    }


def connect(path: str, threads: int = 2, memory_limit: str = "6GB") -> Any:
    """A DuckDB connection with the dataset's view over the Parquet file at ``path``."""
    con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit})
    # A progress bar would be drawn on the child's output, which carries its JSON report.
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE SCHEMA riverside_hospitals")
    con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM read_parquet('{path}')")
    return con


def reader(
    con: Any,
    epsilon: float,
    delta: float,
    meta: dict[str, Any],
    *,
    cache: dict[str, Any] | None = None,
) -> Any:
    """SmartNoise's private reader over ``con`` at (ε, δ) per query."""
    connection = Connection(con, cache)
    privacy = Privacy(epsilon=epsilon, delta=delta)
    return snsql.from_connection(connection, engine="postgres", privacy=privacy, metadata=meta)
