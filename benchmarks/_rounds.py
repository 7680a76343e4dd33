"""Answering a baseline's queries in rounds within a time budget (used by its child).

Each round answers every (query, ε) once, so when the budget runs out every pair has
about as many answers as the others; a pair the baseline cannot answer records its
error once and is skipped from then on. Plain Python: it runs in any environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Answer = list[list[Any]]


def in_rounds(
    job: dict[str, Any], answer: Callable[[dict[str, Any], float], Answer]
) -> dict[str, Any]:
    """Up to ``job["repeats"]`` answers per query and ε, none begun after
    ``job["seconds"]``: per query name and ε (as text), the list of answers or an error."""
    results: dict[str, dict[str, Any]] = {
        q["name"]: {str(e): [] for e in job["epsilons"]} for q in job["queries"]
    }
    begun = time.perf_counter()
    for _ in range(job["repeats"]):
        for query in job["queries"]:
            for epsilon in job["epsilons"]:
                runs = results[query["name"]][str(epsilon)]
                if isinstance(runs, dict):
                    continue
                if time.perf_counter() - begun > job["seconds"]:
                    return _finished(results)
                try:
                    runs.append(answer(query, epsilon))
                except Exception as error:  # a query the baseline cannot answer: n/a
                    results[query["name"]][str(epsilon)] = {
                        "error": f"{type(error).__name__}: {error}"[:300]
                    }
    return _finished(results)


def _finished(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for per_epsilon in results.values():
        for epsilon, runs in per_epsilon.items():
            if runs == []:
                per_epsilon[epsilon] = {"error": "not reached in the time allowed"}
    return results
