"""A private join query's plan: the join checked, priced and rewritten, reading no data.

:func:`plan_join` checks a join query (:func:`entrepot.privacy.sql.join.check_join`)
and plans the query over the joined view with :func:`entrepot.privacy.plan`, the
planner of every single-dataset query: the same checker, bounding rewrite, noise
scales, thresholds and fingerprint. Two things differ, both here:

- the view's privacy unit is the person a matched link-key value stands for, so the
  rewrite bounds each person's rows and groups across the join (a person with m rows
  on one side and n on the other has m × n rows in the view, weighed down to R);
- the WHERE conditions ran at the holders before blinding, so the rewritten SQL reads
  the view unfiltered; the plan keeps them for its output groups and fingerprint.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from entrepot.privacy._groups import Codes
from entrepot.privacy.plan import Plan, plan
from entrepot.privacy.sql.join import (
    JOINED_VIEW,
    JoinedQuery,
    JoinSide,
    Side,
    as_written,
    check_join,
)
from entrepot.standards.schema import Standard

__all__ = ["JoinPlan", "plan_join"]


@dataclass(frozen=True)
class JoinPlan:
    """A checked, priced join: what each holder runs, and the plan over the joined view."""

    joined: JoinedQuery
    plan: Plan  # its standard is the view's: the unit and the columns the holders send

    @property
    def sides(self) -> tuple[JoinSide, JoinSide]:
        return self.joined.sides

    @property
    def concept(self) -> str:
        return self.joined.concept

    @property
    def unit(self) -> str:
        return self.joined.unit

    @property
    def epsilon(self) -> float:
        return self.plan.epsilon

    @property
    def delta(self) -> float:
        return self.plan.delta

    @property
    def fingerprint(self) -> str:
        return self.plan.fingerprint


def plan_join(
    sql: str,
    left: Side,
    right: Side,
    *,
    epsilon: float | None = None,
    codes: Codes = None,
    versions: tuple[str, str] = ("", ""),
) -> JoinPlan:
    """Check, price and rewrite a join of ``left`` and ``right`` without touching data.

    ``versions`` are the two versions' content hashes the fingerprint binds to.
    Raises :class:`~entrepot.errors.PolicyViolation` naming the rule.
    """
    joined = check_join(sql, left, right)
    aliases = (joined.sides[0].alias, joined.sides[1].alias)
    planned = as_written(
        aliases,
        lambda: plan(
            joined.sql,
            standard=joined.standard,
            policy=joined.policy,
            dataset=JOINED_VIEW,
            epsilon=epsilon,
            codes=codes,
            version="+".join(versions),
        ),
    )
    read = {joined.unit} | {
        side.renamed(column) for side in joined.sides for column in side.columns
    }
    view = Standard(
        name=joined.standard.name,
        title="",
        description="",
        version="",
        fields=tuple(f for f in joined.standard.fields if f.name in read),
        privacy_unit=joined.unit,
        one_row_per_unit=False,
    )
    pattern = re.compile(rf"\b({'|'.join(re.escape(a) for a in aliases)})__")
    planned = dataclasses.replace(
        planned,
        standard=view,
        rewrite=dataclasses.replace(planned.rewrite, where="TRUE"),
        notes=tuple(pattern.sub(r"\1.", note) for note in planned.notes),
    )
    return JoinPlan(joined, planned)
