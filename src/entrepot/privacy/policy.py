"""The analysis policy a provider sets on a dataset: what a query may touch and spend.

A policy is a small YAML document; every key is optional and its default comes from
the roles of the dataset's standard::

    columns:
      aggregate: [cost]                 # measures allowed inside SUM / AVG / MEDIAN
      where: [district, visit_date]     # columns allowed in WHERE
      group_by: [district, visit_date]  # dimensions, and time columns (truncated)
    aggregates: [count, count_distinct, sum, avg, quantile]   # quantile: MEDIAN, QUANTILE_CONT
    contributions:
      rows_per_unit: auto     # rows one unit adds, grouped or not; auto: estimated at publish
      bound_epsilon: 0.1      # ε a publish spends on rows_per_unit, again on rows it removes
      groups: 3               # groups one unit counts in, in distinct counts
      removed_epsilon: 0.1    # share of a query's ε that estimates what bounding removed
    threshold: 10             # a group's noisy count must reach this to be shown
    small_groups: suppress    # or merge (into one "other" group)
    mechanism: laplace        # laplace: pure ε; gaussian: zCDP, reported as (ε, δ)
    delta: 1.0e-10            # gaussian only; at most 1/(10·N) for the version's N rows
    delta_cap: 1.0e-7         # total δ of all consumers together; at most 1/(10·N)
    epsilon:
      per_query: 1.0          # the largest ε one query may spend
      default: 0.5            # what a query spends when it names no ε
      dataset_cap: 10.0       # all consumers together (read by the budget ledger)
    latency_floor_ms: 250     # answers are padded to at least this latency
    max_groups: 10000         # the largest number of output groups
    coverage:                 # what the dataset covers, in public: output groups come
      visit_date: {from: 2025-01-01, to: 2025-06-30}   # from here, not the whole
      district: {within: ["910000"]}                   # code list or time range
    near_zero: mark           # groups whose count is not told from zero: mark or suppress
    join_with: [riverside-hospitals/outpatient-visits, health.visit]   # private joins allowed
                              # with these datasets (provider/dataset) or standards; none by default
    release:                  # row-level releases: none unless kinds lists them
      kinds: [anonymized]     # anonymized (k-anonymous rows) and/or synthetic (DP rows)
      k_min: 5                # the smallest k a release may claim
      l_min: 2                # the smallest l, when a release names a sensitive column
      l_model: distinct       # distinct or entropy l-diversity
      t_max: 1.0              # the largest t (t-closeness, total variation) a release may claim
      max_suppression: 0.05   # the largest share of rows a release may drop
      quasi_identifiers: [district, sex, age_band, visit_date]   # generalized to reach k
      sensitive: [diagnosis_group]   # kept as they are; l and t are measured on them
      keep: [cost]            # measures kept in a release, clamped to their bounds
      epsilon_per_release: 5.0   # the largest ε one synthetic release may spend

``rows_per_unit: auto`` bounds each unit by the version's own 95th percentile of rows
per unit (a lower one where its units are too few to resolve the 95th), released
with differential privacy when the version is published
(:mod:`entrepot.privacy.bounds`) at ``bound_epsilon`` (and as much again on the rows
it removes), which the dataset's global ε cap pays; an integer overrides it. The
same bound holds for grouped and ungrouped queries, so a total and the sum of its
groups bound alike. A policy written with the earlier ``rows_per_group: k`` (and
``groups: G``) reads as ``rows_per_unit: k·G``, the rows such a unit could add to a
grouped query.

Defaults from the roles: identifiers, quasi-identifiers and sensitive columns are
never in WHERE or GROUP BY; measures are only allowed inside aggregates; dimensions
and time columns may be filtered and grouped on.

δ adds up over queries as ε does, so the budget ledger caps the dataset's total δ as
it caps its ε. ``delta_cap`` sets that cap; left out, it is 1/(10·N) for the latest
version's N rows (:func:`delta_limit`) rounded down to a power of ten, and never
below one query's δ (:func:`dataset_delta_cap`). Consumers see the cap in their
budgets, and N is not public: rounded so, the cap tells N's order of magnitude only.
It is written when the policy is set and lowered when a version with more rows is
published.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from entrepot._numbers import MAX_COUNT, MAX_EPSILON
from entrepot.errors import InvalidInput, PolicyViolation
from entrepot.privacy.coverage import Coverage, parse_coverage
from entrepot.privacy.release_rules import ReleaseRules, parse_release_rules
from entrepot.standards.schema import Role, Standard

__all__ = [
    "AGGREGATES",
    "MECHANISMS",
    "NEAR_ZERO",
    "SMALL_GROUPS",
    "Policy",
    "check_delta",
    "dataset_delta_cap",
    "default_policy",
    "delta_limit",
    "parse_policy",
]

AGGREGATES = ("count", "count_distinct", "sum", "avg", "quantile")
MECHANISMS = ("laplace", "gaussian")
SMALL_GROUPS = ("suppress", "merge")
NEAR_ZERO = ("mark", "suppress")
_KEYS = (
    "columns",
    "aggregates",
    "contributions",
    "threshold",
    "small_groups",
    "mechanism",
    "delta",
    "delta_cap",
    "epsilon",
    "latency_floor_ms",
    "max_groups",
    "coverage",
    "near_zero",
    "join_with",
    "release",
)
# δ must stay negligible against 1/N for any realistic dataset size N; a provider
# who needs a larger δ has misunderstood what it buys (a 1/N chance of a full leak).
_MAX_DELTA = 1e-6
# A latency floor past a minute would outlast any client's patience.
_MAX_FLOOR_MS = 60_000
# δ bounds the chance that the guarantee fails outright, which may expose anyone in
# the data: with N rows (never fewer than the people in them), δ <= 1/(10·N) keeps the
# expected number of people one query can expose under 0.1.
_ROWS_FACTOR = 10
# A dataset as the catalog names it, or a standard's name.
_SLUG = r"[a-z0-9]+(?:[-_][a-z0-9]+)*"
# A dataset (provider/dataset, or node:provider/dataset on another node) or a standard.
_JOIN_NAME = re.compile(rf"(?:{_SLUG}:)?{_SLUG}/{_SLUG}|{_SLUG}(?:\.[a-z0-9_]+)+")


@dataclass(frozen=True)
class Policy:
    """What queries on one dataset may touch and spend. Build with :func:`parse_policy`."""

    aggregate_columns: tuple[str, ...]
    where_columns: tuple[str, ...]
    group_by_columns: tuple[str, ...]
    aggregates: tuple[str, ...] = AGGREGATES
    # None: the version's own estimate (``auto``); an integer: the provider's bound.
    rows_per_unit: int | None = None
    groups_per_unit: int = 3
    threshold: float = 0.0
    small_groups: str = "suppress"
    mechanism: str = "laplace"
    delta: float = 1e-10
    max_epsilon_per_query: float = 1.0
    default_epsilon: float = 0.5
    dataset_epsilon_cap: float = 10.0
    latency_floor_ms: int = 250
    max_groups: int = 10_000
    coverage: Coverage = field(default_factory=Coverage)
    near_zero: str = "mark"
    removed_epsilon: float = 0.1
    delta_cap: float | None = None
    # The datasets (provider/dataset) and standards this one may be privately joined with.
    join_with: tuple[str, ...] = ()
    release: ReleaseRules = field(default_factory=ReleaseRules)
    bound_epsilon: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        """The policy as a document :func:`parse_policy` reads back to an equal policy."""
        # ``delta_cap`` is written only when set: left out, it follows N.
        explicit = {} if self.delta_cap is None else {"delta_cap": self.delta_cap}
        return {
            "columns": {
                "aggregate": list(self.aggregate_columns),
                "where": list(self.where_columns),
                "group_by": list(self.group_by_columns),
            },
            "aggregates": list(self.aggregates),
            "contributions": {
                "rows_per_unit": "auto" if self.rows_per_unit is None else self.rows_per_unit,
                "bound_epsilon": self.bound_epsilon,
                "groups": self.groups_per_unit,
                "removed_epsilon": self.removed_epsilon,
            },
            "threshold": self.threshold,
            "small_groups": self.small_groups,
            "mechanism": self.mechanism,
            "delta": self.delta,
            **explicit,
            "epsilon": {
                "per_query": self.max_epsilon_per_query,
                "default": self.default_epsilon,
                "dataset_cap": self.dataset_epsilon_cap,
            },
            "latency_floor_ms": self.latency_floor_ms,
            "max_groups": self.max_groups,
            "coverage": self.coverage.to_dict(),
            "near_zero": self.near_zero,
            "join_with": list(self.join_with),
            "release": self.release.to_dict(),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the policy: part of every answer's fingerprint."""
        document = asdict(self)
        # Options added later count only when set, so a policy set before they existed
        # keeps the digest its log entry states.
        for name in _LATER_DEFAULTS:
            if getattr(self, name) == _LATER_DEFAULTS[name]:
                del document[name]
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_LATER_DEFAULTS: dict[str, Any] = {
    "coverage": Coverage(),
    "near_zero": "mark",
    "removed_epsilon": 0.1,
    "delta_cap": None,
    "join_with": (),
    "release": ReleaseRules(),
    "bound_epsilon": 0.1,
}


def delta_limit(rows: int) -> float:
    """The largest δ a Gaussian query may spend on a dataset version of ``rows`` rows."""
    return min(_MAX_DELTA, 1 / (_ROWS_FACTOR * max(rows, 1)))


def dataset_delta_cap(policy: Policy, rows: int) -> float:
    """The total δ all consumers together may spend on a dataset whose latest version
    has ``rows`` rows: the policy's ``delta_cap``, else :func:`delta_limit` rounded down
    to a power of ten and raised to one Gaussian query's δ if that is above (which
    :func:`check_delta` keeps under the limit)."""
    if policy.delta_cap is not None:
        return policy.delta_cap
    limit = delta_limit(rows)
    decade = 10.0 ** math.floor(math.log10(limit))
    if decade > limit:  # log10 rounded up across a power of ten
        decade /= 10
    if policy.mechanism == "gaussian" and decade < policy.delta <= limit:
        return policy.delta
    return decade


def check_delta(policy: Policy, rows: int, *, dataset: str) -> None:
    """Refuse a Gaussian ``policy`` whose δ is above :func:`delta_limit` for ``rows``,
    and any policy whose ``delta_cap`` is.

    ``rows`` is the row count of the version the policy governs: the current one when
    a policy is set, the new one when a version is published. Both run for the
    dataset's provider, the only party besides the node's operator that knows N; a
    consumer's query never runs this check, so its outcome cannot depend on N.
    Raises :class:`PolicyViolation` with rule ``delta_rows``.
    """
    limit = delta_limit(rows)
    if policy.delta_cap is not None and policy.delta_cap > limit:
        raise PolicyViolation(
            f"{dataset}: the policy's delta_cap {policy.delta_cap:g} is above 1/(10·N) = "
            f"{limit:.3g} for a version of {rows:,} rows",
            rule="delta_rows",
            hint=f"lower delta_cap in the dataset's policy to at most {limit:.3g}, or leave "
            "it out to follow N, and set it again with `entrepot policy set`",
            delta_cap=policy.delta_cap,
            limit=limit,
            rows=rows,
        )
    if policy.mechanism != "gaussian" or policy.delta <= limit:
        return
    suggestion = 10 ** math.floor(math.log10(limit))
    raise PolicyViolation(
        f"{dataset}: the policy's δ {policy.delta:g} is above 1/(10·N) = {limit:.3g} "
        f"for a version of {rows:,} rows",
        rule="delta_rows",
        hint=f"lower delta in the dataset's policy to at most {limit:.3g}, "
        f"e.g. `delta: {suggestion:.1e}`, and set it again with `entrepot policy set`",
        delta=policy.delta,
        limit=limit,
        rows=rows,
    )


def default_policy(standard: Standard) -> Policy:
    """The policy the standard's column roles imply, with conservative limits."""
    return parse_policy({}, standard, where="default policy")


# A policy is three levels deep; PyYAML builds nested collections recursively, and a
# document nested 5,000 deep exhausted Python's stack, so deeper text is refused
# after a scan that does not recurse.
_MAX_YAML_DEPTH = 32
_YAML_OPENERS = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_YAML_CLOSERS = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _load_yaml(text: str, where: str) -> Any:
    too_deep = InvalidInput(
        f"{where}: nested more than {_MAX_YAML_DEPTH} levels deep",
        hint="a policy needs three levels: top-level keys, their mappings and lists",
    )
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _YAML_OPENERS):
                depth += 1
                if depth > _MAX_YAML_DEPTH:
                    raise too_deep
            elif isinstance(token, _YAML_CLOSERS):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"{where}: not valid YAML ({error})", hint="fix the syntax") from None
    except RecursionError:
        # The scan bounds the nesting the loader meets; this is the last resort.
        raise too_deep from None


def parse_policy(document: Any, standard: Standard, *, where: str = "policy") -> Policy:
    """Read a policy document (a mapping, or YAML text) and check it against ``standard``.

    Every error names the key path (``epsilon.per_query``) and how to fix the value.
    """
    if isinstance(document, str):
        document = _load_yaml(document, where)
        document = {} if document is None else document
    reader = _Reader(document, where)
    reader.only(_KEYS, "")
    columns = reader.mapping("columns")
    reader.only(("aggregate", "where", "group_by"), "columns", columns)
    contributions = reader.mapping("contributions")
    reader.only(
        ("rows_per_unit", "rows_per_group", "bound_epsilon", "groups", "removed_epsilon"),
        "contributions",
        contributions,
    )
    epsilon = reader.mapping("epsilon")
    reader.only(("per_query", "default", "dataset_cap"), "epsilon", epsilon)

    measures = tuple(f.name for f in standard.with_role(Role.MEASURE))
    groupable = tuple(f.name for f in standard.fields if f.role in (Role.DIMENSION, Role.TIME))
    aggregate_columns = reader.columns(columns, "aggregate", measures, standard, (Role.MEASURE,))
    where_columns = reader.columns(
        columns, "where", groupable, standard, (Role.DIMENSION, Role.TIME)
    )
    group_by_columns = reader.columns(
        columns, "group_by", groupable, standard, (Role.DIMENSION, Role.TIME)
    )
    aggregates = reader.choices(document, "aggregates", AGGREGATES)
    mechanism = reader.choice(document, "mechanism", MECHANISMS, "laplace")
    per_query = reader.number(epsilon, "epsilon.per_query", 1.0, positive=True, most=MAX_EPSILON)
    default_eps = reader.number(
        epsilon, "epsilon.default", min(0.5, per_query), positive=True, most=MAX_EPSILON
    )
    if default_eps > per_query:
        raise reader.fail(
            "epsilon.default",
            f"{default_eps:g} is above epsilon.per_query ({per_query:g})",
            "lower epsilon.default or raise epsilon.per_query",
        )
    removed_epsilon = reader.number(
        contributions, "contributions.removed_epsilon", 0.1, positive=False
    )
    if removed_epsilon > 0.5:
        raise reader.fail(
            "contributions.removed_epsilon",
            f"{removed_epsilon:g} would leave less than half of each query's ε to its answer",
            "use a share between 0 (no estimate of what bounding removed) and 0.5, e.g. 0.1",
        )
    groups = reader.integer(contributions, "contributions.groups", 3, 1)
    rows_per_unit = _rows_per_unit(reader, contributions, groups)
    bound_epsilon = reader.number(
        contributions, "contributions.bound_epsilon", 0.1, positive=False, most=MAX_EPSILON
    )
    delta = reader.number(document, "delta", 1e-10, positive=True)
    if delta > _MAX_DELTA:
        raise reader.fail(
            "delta", f"{delta:g} is too large", f"use at most {_MAX_DELTA:g}, far below 1/N"
        )
    delta_cap = None
    if document.get("delta_cap") is not None:
        delta_cap = reader.number(document, "delta_cap", _MAX_DELTA, positive=True)
        if delta_cap > _MAX_DELTA:
            raise reader.fail(
                "delta_cap", f"{delta_cap:g} is too large", f"use at most {_MAX_DELTA:g}"
            )
        if mechanism == "gaussian" and delta_cap < delta:
            raise reader.fail(
                "delta_cap",
                f"{delta_cap:g} is below one query's delta ({delta:g}): no query could run",
                "raise delta_cap or lower delta",
            )
    return Policy(
        aggregate_columns=aggregate_columns,
        where_columns=where_columns,
        group_by_columns=group_by_columns,
        aggregates=aggregates,
        rows_per_unit=rows_per_unit,
        groups_per_unit=groups,
        threshold=reader.number(document, "threshold", 0.0, positive=False),
        small_groups=reader.choice(document, "small_groups", SMALL_GROUPS, "suppress"),
        mechanism=mechanism,
        delta=delta,
        max_epsilon_per_query=per_query,
        default_epsilon=default_eps,
        dataset_epsilon_cap=reader.number(
            epsilon, "epsilon.dataset_cap", 10.0, positive=True, most=MAX_EPSILON
        ),
        latency_floor_ms=reader.integer(document, "latency_floor_ms", 250, 0, _MAX_FLOOR_MS),
        max_groups=reader.integer(document, "max_groups", 10_000, 1),
        coverage=parse_coverage(document.get("coverage", {}), standard, where),
        near_zero=reader.choice(document, "near_zero", NEAR_ZERO, "mark"),
        removed_epsilon=removed_epsilon,
        delta_cap=delta_cap,
        join_with=reader.names(document, "join_with"),
        release=parse_release_rules(document.get("release", {}), standard, where),
        bound_epsilon=bound_epsilon,
    )


def _rows_per_unit(reader: _Reader, contributions: dict[str, Any], groups: int) -> int | None:
    """``contributions.rows_per_unit``: None for ``auto``, else the provider's bound."""
    key = "contributions.rows_per_unit"
    if "rows_per_group" in contributions:
        if "rows_per_unit" in contributions:
            raise reader.fail(
                "contributions.rows_per_group",
                "cannot be given with rows_per_unit",
                "keep rows_per_unit alone: it bounds a unit's rows in total",
            )
        # The earlier form: k rows in each of G groups, the most a unit added to a
        # grouped query, is now its bound in every query.
        per_group = reader.integer(contributions, "contributions.rows_per_group", 5, 1)
        old = "contributions.rows_per_group"
        return reader.counted(old, per_group * groups, 1, MAX_COUNT, f"{key}: 10, in its place")
    if contributions.get("rows_per_unit", "auto") == "auto":
        return None
    hint = f"{key}: auto (estimated from the data at publish), or e.g. {key}: 10"
    return reader.counted(key, contributions["rows_per_unit"], 1, MAX_COUNT, hint)


class _Reader:
    """Typed access to a policy document, with errors that name the key path."""

    def __init__(self, document: Any, where: str) -> None:
        if not isinstance(document, dict):
            raise InvalidInput(
                f"{where}: a policy must be a mapping of keys to values",
                hint="start from `entrepot policy show` output, e.g. `threshold: 10`",
            )
        self.document = document
        self.where = where

    def fail(self, key: str, message: str, hint: str) -> InvalidInput:
        return InvalidInput(f"{self.where}: {key}: {message}", hint=hint, key=key)

    def only(self, allowed: tuple[str, ...], prefix: str, block: Any = None) -> None:
        block = self.document if block is None else block
        for key in block:
            if key not in allowed:
                path = f"{prefix}.{key}" if prefix else str(key)
                raise self.fail(path, "unknown key", f"known keys here: {', '.join(allowed)}")

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.document.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping", f"e.g. {key}: {{...}}")
        return value

    def columns(
        self,
        block: dict[str, Any],
        key: str,
        default: tuple[str, ...],
        standard: Standard,
        roles: tuple[Role, ...],
    ) -> tuple[str, ...]:
        path = f"columns.{key}"
        value = block.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "must be a list of column names", f"e.g. {path}: [a, b]")
        for name in value:
            if name not in standard.field_names:
                raise self.fail(
                    path,
                    f"{name!r} is not a column of {standard.name}",
                    f"its columns are: {', '.join(standard.field_names)}",
                )
            role = standard.field(name).role
            if role not in roles:
                allowed = " or ".join(r.value for r in roles)
                raise self.fail(
                    path,
                    f"{name!r} has role {role.value}; only {allowed} columns are allowed here",
                    f"remove {name!r} from {path}",
                )
        return tuple(dict.fromkeys(value))

    def choices(self, block: dict[str, Any], key: str, known: tuple[str, ...]) -> tuple[str, ...]:
        value = block.get(key, list(known))
        if not isinstance(value, list) or any(v not in known for v in value):
            raise self.fail(key, f"must be a list drawn from {', '.join(known)}", f"{key}: [count]")
        return tuple(dict.fromkeys(value))

    def names(self, block: dict[str, Any], key: str) -> tuple[str, ...]:
        value = block.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _JOIN_NAME.fullmatch(v) for v in value
        ):
            raise self.fail(
                key,
                "must be a list of datasets (provider/dataset, node:provider/dataset on another "
                "node) or standards (health.visit)",
                f"e.g. {key}: [riverside-hospitals/outpatient-visits]",
            )
        return tuple(dict.fromkeys(value))

    def choice(self, block: dict[str, Any], key: str, known: tuple[str, ...], default: str) -> str:
        value = block.get(key, default)
        if value not in known:
            raise self.fail(key, f"unknown value {value!r}", f"use one of: {', '.join(known)}")
        return str(value)

    def number(
        self,
        block: dict[str, Any],
        key: str,
        default: float,
        *,
        positive: bool,
        most: float = sys.float_info.max,
    ) -> float:
        value = block.get(key.rsplit(".", 1)[-1], default)
        # A finite number a float holds (NaN fails the comparison), at most ``most``.
        ok = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= most
        if not ok or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            if most < sys.float_info.max:
                bound += f" and at most {most:,}"
            hint = f"{key}: 1.0"
            if isinstance(value, str) and _is_float(value):
                # YAML 1.1 reads 1e-6 as text; it needs a decimal point to be a number.
                hint = f"write it with a decimal point, e.g. {key}: {float(value):.1e}"
            raise self.fail(key, f"must be a finite number {bound}, not {value!r}", hint)
        return float(value)

    def integer(
        self, block: dict[str, Any], key: str, default: int, minimum: int, most: int = MAX_COUNT
    ) -> int:
        value = block.get(key.rsplit(".", 1)[-1], default)
        return self.counted(key, value, minimum, most, f"{key}: {default}")

    def counted(self, key: str, value: Any, minimum: int, most: int, hint: str) -> int:
        """``value`` as an integer from ``minimum`` to ``most``, or an error naming ``key``."""
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= most:
            raise self.fail(
                key, f"must be an integer from {minimum} to {most:,}, not {value!r}", hint
            )
        return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
