"""Generalization hierarchies: how each quasi-identifier is coarsened, level by level.

A hierarchy maps a column's distinct values to ever coarser labels; its last level is
always ``*`` (the value withheld). Hierarchies come from the standard:

- a code list whose codes have parents climbs them: district → city → province → ``*``
  (the next list is the one that holds the parents);
- a code list whose codes are numeric ranges (``05-14``, ``85+``) merges neighbours:
  10-year bands → 20 → 40 → ``*``;
- any other code list, and booleans: the code, then ``*``;
- dates: day → ISO week (its Monday) → month → quarter → year → ``*``;
- integers and numbers: intervals of width 1, 5, 10, 20, 50, … up to the column's range;
- other strings: one more trailing character masked per level (``12345`` → ``1234*``).

Each level also carries, per label, the share of the column's observed values it stands
for (Iyengar's loss metric for one cell: ``(values covered - 1) / (values - 1)``).
Everything here works on a column's distinct values, never on rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache

import numpy as np

from entrepot.standards import codelist
from entrepot.standards.codelist import codelist_names
from entrepot.standards.schema import Field

__all__ = ["STAR", "Hierarchy", "Levels", "hierarchy_for"]

STAR = "*"
_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$|^(\d+)\s*\+$")
_WIDTHS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000, 100_000, 1_000_000)

# One level's labels for a column's distinct values (in their order).
Step = Callable[[Sequence[object]], list[str]]


@dataclass(frozen=True)
class Hierarchy:
    """A column's levels: ``names[i]`` says what level ``i`` is; ``steps[i]`` computes it."""

    column: str
    names: tuple[str, ...]
    steps: tuple[Step, ...]

    @property
    def height(self) -> int:
        return len(self.steps)

    def levels(self, values: Sequence[object]) -> Levels:
        """The levels of ``values`` (a column's distinct values, missing ones as None)."""
        maps, labels, losses = [], [], []
        n = len(values)
        for step in self.steps:
            out = step(values)
            uniques, codes = np.unique(np.asarray(out, dtype=object), return_inverse=True)
            covered = np.bincount(codes, minlength=len(uniques))
            maps.append(codes.astype(np.int32))
            labels.append(uniques)
            losses.append((covered - 1) / max(n - 1, 1))
        return Levels(self.column, self.names, tuple(maps), tuple(labels), tuple(losses))


@dataclass(frozen=True)
class Levels:
    """A hierarchy applied to a column's distinct values.

    ``maps[i][v]`` is the level-``i`` code of distinct value ``v``, ``labels[i][c]`` the
    label of code ``c`` and ``losses[i][c]`` its loss.
    """

    column: str
    names: tuple[str, ...]
    maps: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    losses: tuple[np.ndarray, ...]

    @property
    def height(self) -> int:
        return len(self.maps)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _identity(values: Sequence[object]) -> list[str]:
    return [_text(v) for v in values]


def _star(values: Sequence[object]) -> list[str]:
    return [STAR] * len(values)


@cache
def _list_of(code: str) -> str | None:
    """The shipped code list that holds ``code`` (where a parent code lives)."""
    for name in codelist_names():
        if code in codelist(name):
            return name
    return None


def _parent_steps(name: str) -> tuple[list[str], list[Step]]:
    names, steps = [], []
    current: str | None = name
    depth = 0
    while current is not None:
        listed = codelist(current)
        parents = [p for p in listed.parents if p]
        if not parents:
            break
        upper = _list_of(parents[0])
        chain = _chain(name, depth + 1)
        names.append(upper or f"parent {depth + 1}")
        steps.append(chain)
        current, depth = upper, depth + 1
    return names, steps


def _chain(name: str, depth: int) -> Step:
    def climb(values: Sequence[object]) -> list[str]:
        out = []
        for value in values:
            code: str | None = _text(value)
            listed: str | None = name
            for _ in range(depth):
                if code is None or listed is None or code not in codelist(listed):
                    code = None
                    break
                code = codelist(listed).parent(code)
                listed = _list_of(code) if code else None
            out.append(code if code else STAR)
        return out

    return climb


def _range_steps(codes: Sequence[str]) -> tuple[list[str], list[Step]]:
    """Neighbouring numeric ranges merged two by two, in the code list's order."""
    names, steps = [], []
    width = 2
    while width < len(codes):
        steps.append(_merge(tuple(codes), width))
        names.append(f"{width} bands")
        width *= 2
    return names, steps


def _bounds(code: str) -> tuple[int, int | None]:
    match = _RANGE.match(code)
    assert match is not None
    if match.group(3) is not None:
        return int(match.group(3)), None
    return int(match.group(1)), int(match.group(2))


def _merge(codes: tuple[str, ...], width: int) -> Step:
    position = {code: i for i, code in enumerate(codes)}

    def label(i: int) -> str:
        group = codes[(i // width) * width : (i // width + 1) * width]
        low, _ = _bounds(group[0])
        _, high = _bounds(group[-1])
        return f"{low:02d}+" if high is None else f"{low:02d}-{high:02d}"

    def merge(values: Sequence[object]) -> list[str]:
        return [label(position[_text(v)]) if _text(v) in position else STAR for v in values]

    return merge


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return _as_date(value.astype("datetime64[D]").astype(object))
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _date_step(unit: str) -> Step:
    def cut(day: date) -> str:
        if unit == "week":
            return (day - timedelta(days=day.weekday())).isoformat() + "/P1W"
        if unit == "month":
            return f"{day.year:04d}-{day.month:02d}"
        if unit == "quarter":
            return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
        return f"{day.year:04d}"

    def step(values: Sequence[object]) -> list[str]:
        days = [_as_date(v) for v in values]
        return [STAR if d is None else cut(d) for d in days]

    return step


def _day(values: Sequence[object]) -> list[str]:
    days = [_as_date(v) for v in values]
    return [STAR if d is None else d.isoformat() for d in days]


def _interval(width: int) -> Step:
    def step(values: Sequence[object]) -> list[str]:
        out = []
        for value in values:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                out.append(STAR)
                continue
            low = int(np.floor(float(value) / width) * width)  # type: ignore[arg-type]
            out.append(f"[{low}, {low + width})")
        return out

    return step


def _numeric_steps(values_range: float) -> tuple[list[str], list[Step]]:
    names, steps = [], []
    for width in _WIDTHS[1:]:
        if width >= values_range:
            break
        names.append(f"width {width}")
        steps.append(_interval(width))
    return names, steps


def _mask(length: int) -> tuple[list[str], list[Step]]:
    def masked(keep: int) -> Step:
        def step(values: Sequence[object]) -> list[str]:
            out = []
            for value in values:
                text = _text(value)
                out.append(text[:keep] + STAR * max(len(text) - keep, 0) if text else STAR)
            return out

        return step

    keeps = range(length - 1, 0, -1)
    return [f"{k} characters" for k in keeps], [masked(k) for k in keeps]


def hierarchy_for(column: Field, values: Sequence[object]) -> Hierarchy:
    """The hierarchy the standard implies for ``column``, given its distinct values."""
    names: list[str] = []
    steps: list[Step] = []
    first: Step = _identity
    if column.codelist is not None:
        listed = codelist(column.codelist)
        if listed.codes and all(_RANGE.match(c) for c in listed.codes):
            names, steps = _range_steps(listed.codes)
        else:
            names, steps = _parent_steps(column.codelist)
    elif column.type in ("date", "datetime"):
        first = _day
        names = ["week", "month", "quarter", "year"]
        steps = [_date_step(unit) for unit in names]
    elif column.type in ("integer", "number"):
        present = [float(v) for v in values if v is not None and not _is_nan(v)]  # type: ignore[arg-type]
        spread = (max(present) - min(present)) if present else 0.0
        names, steps = _numeric_steps(spread)
    elif column.type == "string":
        longest = max((len(_text(v)) for v in values), default=0)
        names, steps = _mask(min(longest, 8))
    return Hierarchy(
        column.name,
        ("value", *names, "withheld"),
        (first, *steps, _star),
    )


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and np.isnan(value)
