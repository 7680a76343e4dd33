"""SmartNoise SQL's answers to the accuracy benchmark's queries (run in its own venv).

Reads the job from standard input as JSON (see ``bench_accuracy.snsql_job``). The
patient is SmartNoise's private id, with at most the rows per patient entrepot's
bound allows (``max_ids``, enforced by sampling rows per patient). The engine's answer
to each SQL text SmartNoise sends is computed once and reused by the repeats, which
redraw SmartNoise's noise only (its random choice of rows per patient is kept). Prints
one JSON line: per query and ε, the answers of every repeat as ``[[key..., value]]``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _snsql_duckdb import connect, metadata, reader


def text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def number(value: Any) -> float | None:
    return None if value is None else float(value)


def main() -> None:
    job = json.loads(sys.stdin.read())
    started = time.perf_counter()
    con = connect(job["path"])
    results: dict[str, Any] = {}
    for query in job["queries"]:
        meta = metadata(job["rows"], query["rows"], True)
        cache: dict[str, Any] = {}
        per_epsilon: dict[str, Any] = {}
        for epsilon in job["epsilons"]:
            runs = []
            try:
                private = reader(con, epsilon, job["delta"], meta, cache=cache)
                keys = len(query["keys"])
                for _ in range(job["repeats"]):
                    rows = private.execute(query["sql"])[1:]
                    runs.append(
                        [
                            [
                                *(text(v) for v in row[:keys]),
                                None if row[-1] is None else float(row[-1]),
                            ]
                            for row in rows
                        ]
                    )
            except Exception as error:  # a query SmartNoise does not parse or run: n/a
                per_epsilon[str(epsilon)] = {"error": f"{type(error).__name__}: {error}"[:300]}
                continue
            per_epsilon[str(epsilon)] = runs
        results[query["name"]] = per_epsilon
    print(json.dumps({"results": results, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
