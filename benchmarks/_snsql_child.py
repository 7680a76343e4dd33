"""SmartNoise SQL's answers to the accuracy benchmark's queries (run in its own venv).

Reads the job from standard input as JSON (see ``bench_accuracy.baseline_job``). The
patient is SmartNoise's private id, with at most the rows per patient entrepot's
bound allows (``max_ids``, enforced by sampling rows per patient). The engine's answer
to each SQL text SmartNoise sends is computed once and reused by the repeats, which
redraw SmartNoise's noise only (its random choice of rows per patient is kept); they
run in rounds within the job's ``seconds`` (see ``_rounds.py``). Prints one JSON line:
per query and ε, the answers of every repeat as ``[[key..., value]]``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _rounds import in_rounds
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
    readers: dict[tuple[str, float], Any] = {}
    caches: dict[str, dict[str, Any]] = {}

    def answer(query: dict[str, Any], epsilon: float) -> list[list[Any]]:
        key = (query["name"], epsilon)
        if key not in readers:
            meta = metadata(job["rows"], query["rows"], True)
            cache = caches.setdefault(query["name"], {})
            readers[key] = reader(con, epsilon, job["delta"], meta, cache=cache)
        rows = readers[key].execute(query["sql"])[1:]
        keys = len(query["keys"])
        return [[*(text(v) for v in row[:keys]), number(row[-1])] for row in rows]

    results = in_rounds(job, answer)
    print(json.dumps({"results": results, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
