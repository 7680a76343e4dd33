"""Dataset policies on the wire."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from entrepot.schemas._types import UtcDateTime

if TYPE_CHECKING:
    from entrepot.exchange.policies import PolicyInfo

__all__ = ["PolicyIn", "PolicyOut"]


# A policy is a page of YAML; the request body limit would stop anything far larger.
_DOCUMENT_MAX = 64 * 1024


class PolicyIn(BaseModel):
    document: str = Field(
        min_length=1,
        max_length=_DOCUMENT_MAX,
        description="The policy as YAML (or JSON), as `entrepot policy set` reads it.",
        examples=["max_epsilon_per_query: 0.5\ndataset_epsilon_cap: 10\n"],
    )


class PolicyOut(BaseModel):
    dataset: str = Field(examples=["riverside-hospitals/outpatient-visits"])
    explicit: bool = Field(description="False: the default the standard's column roles imply.")
    digest: str = Field(description="SHA-256 of the policy, part of every answer's fingerprint.")
    set_by: str | None
    set_at: UtcDateTime | None
    policy: dict[str, Any] = Field(description="Columns, aggregates, ε limits, thresholds.")
    bound: dict[str, Any] | None = Field(
        default=None,
        description="The rows-per-unit bound queries on the latest version use "
        "(rows_per_unit), its source (policy, estimate or fallback), that version's "
        "number, its private estimate, the quantile of rows per unit it estimates and the "
        "ε it spent; null before any version.",
    )

    @classmethod
    def of(cls, info: PolicyInfo) -> PolicyOut:
        return cls(
            dataset=info.dataset,
            explicit=info.explicit,
            digest=info.policy.digest,
            set_by=info.set_by,
            set_at=info.set_at,
            policy=info.policy.to_dict(),
            bound=info.bound,
        )
