"""The ``release`` block of a dataset's policy: which row-level releases its provider allows.

::

    release:
      kinds: [anonymized, synthetic]   # none by default: rows leave only if the provider says so
      k_min: 5                         # the smallest k a release may claim
      l_min: 2                         # the smallest l, when a release names a sensitive column
      l_model: distinct                # or entropy (entropy l-diversity)
      t_max: 0.5                       # the largest t (t-closeness) a release may claim
      max_suppression: 0.05            # the largest share of rows a release may drop
      quasi_identifiers: [district, sex, age_band, visit_date]
      sensitive: [diagnosis_group]     # kept as they are; l and t are measured on them
      keep: [cost]                     # measures kept, clamped to their public bounds
      epsilon_per_release: 5.0         # the largest ε one synthetic release may spend

Left out, ``quasi_identifiers`` are the standard's ``quasi_identifier``, ``dimension``
and ``time`` columns that are not sensitive, and ``sensitive`` its ``sensitive``
columns. Identifiers leave only as pseudonyms a release asks for by name (docs/releases.md);
no column the block does not name leaves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from entrepot._numbers import MAX_COUNT
from entrepot.errors import InvalidInput
from entrepot.standards.schema import Role, Standard

__all__ = ["RELEASE_KINDS", "ReleaseRules", "parse_release_rules"]

RELEASE_KINDS = ("anonymized", "synthetic")
L_MODELS = ("distinct", "entropy")
_KEYS = (
    "kinds",
    "k_min",
    "l_min",
    "l_model",
    "t_max",
    "max_suppression",
    "quasi_identifiers",
    "sensitive",
    "keep",
    "epsilon_per_release",
)
# k = 5 is the floor most statistical offices and ARX's examples use; below it a class
# is small enough that a neighbour, not only an insider, can single a person out.
_K_FLOOR = 5


@dataclass(frozen=True)
class ReleaseRules:
    """What releases of one dataset may be; the defaults allow none."""

    kinds: tuple[str, ...] = ()
    k_min: int = _K_FLOOR
    l_min: int = 2
    l_model: str = "distinct"
    t_max: float = 1.0
    max_suppression: float = 0.05
    quasi_identifiers: tuple[str, ...] | None = None  # None: from the standard's roles
    sensitive: tuple[str, ...] | None = None
    keep: tuple[str, ...] = ()
    epsilon_per_release: float = 5.0

    def quasi_identifiers_of(self, standard: Standard) -> tuple[str, ...]:
        if self.quasi_identifiers is not None:
            return self.quasi_identifiers
        sensitive = set(self.sensitive_of(standard))
        roles = (Role.QUASI_IDENTIFIER, Role.DIMENSION, Role.TIME)
        return tuple(f.name for f in standard.fields if f.role in roles and f.name not in sensitive)

    def sensitive_of(self, standard: Standard) -> tuple[str, ...]:
        if self.sensitive is not None:
            return self.sensitive
        return tuple(f.name for f in standard.with_role(Role.SENSITIVE))

    def to_dict(self) -> dict[str, Any]:
        named: dict[str, Any] = {}
        if self.quasi_identifiers is not None:
            named["quasi_identifiers"] = list(self.quasi_identifiers)
        if self.sensitive is not None:
            named["sensitive"] = list(self.sensitive)
        return {
            "kinds": list(self.kinds),
            "k_min": self.k_min,
            "l_min": self.l_min,
            "l_model": self.l_model,
            "t_max": self.t_max,
            "max_suppression": self.max_suppression,
            **named,
            "keep": list(self.keep),
            "epsilon_per_release": self.epsilon_per_release,
        }


def _fail(where: str, key: str, message: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{where}: release.{key}: {message}", hint=hint, key=f"release.{key}")


def _columns(
    block: dict[str, Any], key: str, standard: Standard, roles: tuple[Role, ...], where: str
) -> tuple[str, ...] | None:
    if key not in block:
        return None
    value = block[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, key, "must be a list of column names", f"e.g. release.{key}: [a, b]")
    for name in value:
        if name not in standard.field_names:
            raise _fail(
                where,
                key,
                f"{name!r} is not a column of {standard.name}",
                f"its columns are: {', '.join(standard.field_names)}",
            )
        role = standard.field(name).role
        if role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise _fail(
                where,
                key,
                f"{name!r} has role {role.value}; only {allowed} columns may be listed here",
                f"remove {name!r} from release.{key}",
            )
    return tuple(dict.fromkeys(value))


def _number(
    block: dict[str, Any], key: str, default: float, low: float, high: float, where: str
) -> float:
    value = block.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise _fail(
            where,
            key,
            f"must be a number in [{low:g}, {high:g}], not {value!r}",
            f"release.{key}: {default}",
        )
    return float(value)


def _integer(block: dict[str, Any], key: str, default: int, low: int, where: str) -> int:
    value = block.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_COUNT:
        raise _fail(
            where,
            key,
            f"must be an integer from {low} to {MAX_COUNT:,}, not {value!r}",
            f"release.{key}: {default}",
        )
    return value


def parse_release_rules(block: Any, standard: Standard, where: str) -> ReleaseRules:
    """Read the ``release`` block of a policy document, checked against ``standard``."""
    if not isinstance(block, dict):
        raise InvalidInput(
            f"{where}: release: must be a mapping", hint="e.g. release: {kinds: [anonymized]}"
        )
    for key in block:
        if key not in _KEYS:
            raise _fail(where, str(key), "unknown key", f"known keys here: {', '.join(_KEYS)}")
    kinds = block.get("kinds", [])
    if not isinstance(kinds, list) or any(k not in RELEASE_KINDS for k in kinds):
        raise _fail(
            where,
            "kinds",
            f"must be a list drawn from {', '.join(RELEASE_KINDS)}",
            "release.kinds: [anonymized]",
        )
    l_model = block.get("l_model", "distinct")
    if l_model not in L_MODELS:
        raise _fail(
            where, "l_model", f"unknown value {l_model!r}", f"use one of: {', '.join(L_MODELS)}"
        )
    k_min = _integer(block, "k_min", _K_FLOOR, 2, where)
    sensitive = _columns(block, "sensitive", standard, (Role.SENSITIVE, Role.DIMENSION), where)
    quasi = _columns(
        block,
        "quasi_identifiers",
        standard,
        (Role.QUASI_IDENTIFIER, Role.DIMENSION, Role.TIME),
        where,
    )
    if quasi is not None and sensitive is not None and set(quasi) & set(sensitive):
        both = ", ".join(sorted(set(quasi) & set(sensitive)))
        raise _fail(
            where,
            "sensitive",
            f"{both} cannot be both quasi-identifier and sensitive",
            "list each column in one of release.quasi_identifiers and release.sensitive",
        )
    return ReleaseRules(
        kinds=tuple(dict.fromkeys(kinds)),
        k_min=k_min,
        l_min=_integer(block, "l_min", 2, 1, where),
        l_model=str(l_model),
        t_max=_number(block, "t_max", 1.0, 0.0, 1.0, where),
        max_suppression=_number(block, "max_suppression", 0.05, 0.0, 0.5, where),
        quasi_identifiers=quasi,
        sensitive=sensitive,
        keep=_columns(block, "keep", standard, (Role.MEASURE,), where) or (),
        epsilon_per_release=_number(block, "epsilon_per_release", 5.0, 0.0, 100.0, where),
    )
