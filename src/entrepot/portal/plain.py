"""A dataset's policy in plain language, from the policy document the API returns."""

from __future__ import annotations

from typing import Any

__all__ = ["policy_line", "policy_sentences"]

_AGGREGATES = {
    "count": "counts",
    "count_distinct": "distinct counts",
    "sum": "sums",
    "avg": "averages",
    "quantile": "quantiles (medians, percentiles)",
}


def _listed(items: list[str], most: int = 4) -> str:
    if len(items) > most:
        return ", ".join(items[:most]) + f" and {len(items) - most} more"
    if len(items) > 1:
        return ", ".join(items[:-1]) + " and " + items[-1]
    return items[0] if items else "nothing"


def _eps(value: Any) -> str:
    return f"{float(value):g}"


def _what(policy: dict[str, Any]) -> str:
    kinds = [_AGGREGATES.get(a, a) for a in policy.get("aggregates", [])]
    what = _listed(kinds, most=len(_AGGREGATES))
    grouped = policy.get("columns", {}).get("group_by", [])
    return f"{what} by {_listed(grouped, 3)}" if grouped else f"{what}, ungrouped"


def _threshold(policy: dict[str, Any]) -> str | None:
    threshold = float(policy.get("threshold") or 0)
    if threshold <= 0:
        return None
    fate = "merged into one “other” group" if policy.get("small_groups") == "merge" else "hidden"
    return f"groups under {threshold:g} {fate}"


def policy_line(policy: dict[str, Any]) -> str:
    """One line for a dataset card: what may be asked, ε per query, small groups."""
    parts = [_what(policy), f"at most ε {_eps(policy['epsilon']['per_query'])} per query"]
    small = _threshold(policy)
    if small:
        parts.append(small)
    return "; ".join(parts)


def policy_sentences(policy: dict[str, Any], privacy_unit: str | None) -> list[str]:
    """The policy, one sentence per rule, for a dataset's page."""
    columns = policy.get("columns", {})
    epsilon = policy["epsilon"]
    said = [f"Answers are {_what(policy)}; never a row."]
    if columns.get("aggregate"):
        said.append(f"Sums and averages may be taken of {_listed(columns['aggregate'], 6)}.")
    if columns.get("where"):
        said.append(f"Queries may filter on {_listed(columns['where'], 6)}.")
    said.append(
        f"One query spends at most ε {_eps(epsilon['per_query'])} "
        f"(ε {_eps(epsilon['default'])} when it names none); all consumers together at most "
        f"ε {_eps(epsilon['dataset_cap'])}."
    )
    small = _threshold(policy)
    if small:
        said.append(small[0].upper() + small[1:] + ".")
    contributions = policy.get("contributions", {})
    unit = privacy_unit or "person"
    if contributions:
        rows = contributions.get("rows_per_unit", "auto")
        bound = (
            "as many rows as 95% of them have at most (estimated privately when a version "
            "is published; a lower share where the version has too few of them to tell)"
            if rows == "auto"
            else f"at most {rows} rows"
        )
        said.append(
            f"Each {unit} counts for {bound} in any answer, and in at most "
            f"{contributions['groups']} groups of a distinct count."
        )
    mechanism = policy.get("mechanism", "laplace")
    noise = "Gaussian noise (reported as ε, δ)" if mechanism == "gaussian" else "Laplace noise"
    said.append(
        f"Noise: {noise}. Answers take at least {policy.get('latency_floor_ms', 0)} ms, "
        "whatever the data."
    )
    if policy.get("near_zero") == "suppress":
        said.append("Groups whose count cannot be told from zero are left out.")
    return said
