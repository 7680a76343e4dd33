"""Private queries on the wire: the question, the answer and its receipt."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictFloat, computed_field

from entrepot._numbers import MAX_EPSILON, MIN_EPSILON

__all__ = ["AnswerOut", "AnswerRow", "DatasetUse", "Estimate", "OverlapIn", "QueryIn", "QueryOut"]


class QueryIn(BaseModel):
    sql: str = Field(
        min_length=1,
        max_length=20_000,
        examples=[
            "SELECT district, COUNT(*) FROM riverside_hospitals.outpatient_visits GROUP BY district"
        ],
    )
    epsilon: StrictFloat | None = Field(
        None, ge=MIN_EPSILON, le=MAX_EPSILON, description="ε to spend (policy default)."
    )
    purpose: str | None = Field(
        None, min_length=1, max_length=100, description="Purpose (default: the grant's)."
    )


class OverlapIn(BaseModel):
    left: str = Field(min_length=3, max_length=200, examples=["jade-pay/payments"])
    right: str = Field(
        min_length=3, max_length=200, examples=["riverside-hospitals/outpatient-visits"]
    )
    epsilon: StrictFloat | None = Field(
        None, ge=MIN_EPSILON, le=MAX_EPSILON, description="ε to spend on each side."
    )
    purpose: str | None = Field(
        None, min_length=1, max_length=100, description="Purpose (default: the grant's)."
    )


class DatasetUse(BaseModel):
    """One dataset an answer read (a private join reads two)."""

    dataset: str
    version: int
    epsilon_left: float | None = Field(description="ε the consumer has left on it.")


class Estimate(BaseModel):
    """One aggregate of one group: the noisy value and its interval."""

    value: float | None = Field(
        description="The noisy value; null for an AVG or a quantile whose count's interval "
        "reaches 0 (the interval is then the measure's bounds), and for a quantile of the "
        "merged `other` row.",
        examples=[1204.0],
    )
    low: float | None = Field(description="Low end of the interval.", examples=[1188.3])
    high: float | None = Field(description="High end of the interval.", examples=[1219.7])


class AnswerRow(BaseModel):
    key: list[Any] = Field(description="The group's key, one value per key column.")
    values: list[list[float | None]] = Field(
        description="Per aggregate: [value, low, high]; value is null for an AVG or a "
        "quantile whose count's interval reaches 0. The same figures as `estimates`, by "
        "position."
    )
    other: bool
    near_zero: bool = Field(
        False, description="The group's noisy count cannot be told from zero at this noise."
    )
    asked: list[list[float | None] | None] = Field(
        default_factory=list,
        description="Per aggregate: [value, low, high] with the group's part of what "
        "contribution bounding removed put back, about the question asked; null where "
        "nothing is put back, and empty when nothing is for any aggregate. Given for a "
        "COUNT or SUM whose removed total is told from zero at its own noise, or, without "
        "WHERE, which puts back the version's removed share instead (a note says so); "
        "high is null where some unit may have more rows than the removed total counts.",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="Per aggregate, in the order of `aggregates`: `values` with named fields."
    )
    @property
    def estimates(self) -> list[Estimate]:
        return [_estimate(figures) for figures in self.values]

    @computed_field(  # type: ignore[prop-decorator]
        description="`asked` with named fields."
    )
    @property
    def asked_estimates(self) -> list[Estimate | None]:
        return [None if figures is None else _estimate(figures) for figures in self.asked]


class AnswerOut(BaseModel):
    columns: list[str]
    keys: list[str]
    aggregates: list[str]
    key_types: Any
    rows: list[AnswerRow]
    epsilon: float
    delta: float
    mechanism: str
    scales: Any
    suppressed: list[list[Any]]
    merged: list[list[Any]]
    threshold: float | None
    fingerprint: str
    confidence: float
    notes: list[str]
    near_zero_threshold: float = Field(
        0.0,
        description="Rows whose count is under it are near zero: any of the answer's "
        "empty groups exceeds it with probability at most 1e-6 (each with 1e-6 divided by "
        "the number of groups).",
    )
    interval_of: str = Field(
        "", description="What the intervals cover: 'bounded data' when contributions were bounded."
    )
    removed: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="Per aggregate: [share, low, high] of it that contribution bounding removed.",
    )
    removed_budget: float = Field(
        0.0, description="The share of the query's ε (ρ for Gaussian noise) spent on removed."
    )
    removed_of: str = Field(
        "answer",
        description="Whose share `removed` gives: 'answer' (estimated with this query's ε) or "
        "'version' (the share of the version's rows its bound removes, released at publish).",
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="`removed` with named fields: per aggregate, the share bounding removed."
    )
    @property
    def removed_estimates(self) -> dict[str, Estimate]:
        return {name: _estimate(figures) for name, figures in self.removed.items()}


def _estimate(figures: list[float | None]) -> Estimate:
    value, low, high = figures
    return Estimate(value=value, low=low, high=high)


class QueryOut(BaseModel):
    dataset: str = Field(description="The dataset read; for a private join, both: 'A JOIN B'.")
    version: int = Field(description="The version read (of the first dataset of a join).")
    epsilon_spent: float = Field(
        description="0 when the answer repeats an earlier one; a private join spends its ε "
        "on each of its two datasets, and this is their sum."
    )
    epsilon_left: float | None
    repeated: bool
    answer: AnswerOut
    receipt: dict[str, Any] = Field(
        description="Signed receipt, naming every dataset read; verify offline."
    )
    datasets: list[DatasetUse] = Field(
        default_factory=list, description="Every dataset the answer read, with its version."
    )
