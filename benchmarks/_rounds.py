"""Answering a baseline's queries within a time budget (used by its child), in one of
two orders.

- :func:`in_rounds`: each round answers every (query, ε) once, so when the budget runs
  out every pair has about as many answers as the others. For a baseline whose
  answers cost about the same each time.
- :func:`query_by_query`: every repeat of a query at every ε right after its first
  answer, then the next query. For a baseline whose first answer to a query is the
  costly one (it evaluates the query; later answers redraw its noise): every query
  reached gets its full repeats, instead of every query one costly answer.

Either way a pair the baseline cannot answer records its error once and is skipped
from then on, and a pair never reached says so. Plain Python: it runs in any
environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Answer = list[list[Any]]
Results = dict[str, dict[str, Any]]


def in_rounds(
    job: dict[str, Any], answer: Callable[[dict[str, Any], float], Answer]
) -> dict[str, Any]:
    """Up to ``job["repeats"]`` answers per query and ε, none begun after
    ``job["seconds"]``: per query name and ε (as text), the list of answers or an error."""
    results = _empty(job)
    begun = time.perf_counter()
    for _ in range(job["repeats"]):
        for query in job["queries"]:
            for epsilon in job["epsilons"]:
                if time.perf_counter() - begun > job["seconds"]:
                    return _finished(results)
                _answer_once(results, query, epsilon, answer)
    return _finished(results)


def query_by_query(
    job: dict[str, Any],
    answer: Callable[[dict[str, Any], float], Answer],
    *,
    finish: bool = True,
) -> dict[str, Any]:
    """``job["repeats"]`` answers per ε of one query after the other, no query begun
    after ``job["seconds"]``: the same results as :func:`in_rounds`.

    With ``finish``, a query begun gets all its repeats whatever the time; without it,
    no answer is begun after ``job["seconds"]`` either (for a baseline whose every
    answer is costly, so a query begun late cannot hold the run far past its budget).
    """
    results = _empty(job)
    begun = time.perf_counter()
    for query in job["queries"]:
        if time.perf_counter() - begun > job["seconds"]:
            break
        for _ in range(job["repeats"]):
            for epsilon in job["epsilons"]:
                if not finish and time.perf_counter() - begun > job["seconds"]:
                    return _finished(results)
                _answer_once(results, query, epsilon, answer)
    return _finished(results)


def _empty(job: dict[str, Any]) -> Results:
    return {q["name"]: {str(e): [] for e in job["epsilons"]} for q in job["queries"]}


def _answer_once(
    results: Results,
    query: dict[str, Any],
    epsilon: float,
    answer: Callable[[dict[str, Any], float], Answer],
) -> None:
    """One more answer to the pair, unless it failed before; a failure is kept as its
    error, the pair then skipped."""
    runs = results[query["name"]][str(epsilon)]
    if isinstance(runs, dict):
        return
    try:
        runs.append(answer(query, epsilon))
    except Exception as error:  # a query the baseline cannot answer: n/a
        results[query["name"]][str(epsilon)] = {"error": f"{type(error).__name__}: {error}"[:300]}


def _finished(results: Results) -> dict[str, Any]:
    for per_epsilon in results.values():
        for epsilon, runs in per_epsilon.items():
            if runs == []:
                per_epsilon[epsilon] = {"error": "not reached in the time allowed"}
    return results
