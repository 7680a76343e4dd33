"""Dataset policies: the analysis rules in force on a dataset.

Every account reads them: they are public, and consumers need them to phrase
queries that pass. Only the dataset's provider sets them; another tenant's
dataset answers 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from entrepot.api._exchange import exchange_of
from entrepot.api._types import UtcDateTime
from entrepot.api.auth import AnyActor, Provider
from entrepot.api.routers.catalog import DatasetSlug, ProviderSlug
from entrepot.exchange.policies import Policies, PolicyInfo

__all__ = ["PolicyIn", "PolicyOut", "router"]

router = APIRouter(prefix="/v1/policies", tags=["policies"])

# A policy is a page of YAML; the request body limit would stop anything far larger.
_DOCUMENT_MAX = 64 * 1024


def policies(request: Request) -> Policies:
    return exchange_of(request).policies


PoliciesDep = Annotated[Policies, Depends(policies)]


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

    @classmethod
    def of(cls, info: PolicyInfo) -> PolicyOut:
        return cls(
            dataset=info.dataset,
            explicit=info.explicit,
            digest=info.policy.digest,
            set_by=info.set_by,
            set_at=info.set_at,
            policy=info.policy.to_dict(),
        )


@router.get("/{provider}/{dataset}", summary="The policy in force on a dataset.")
def show(
    _actor: AnyActor, domain: PoliciesDep, provider: ProviderSlug, dataset: DatasetSlug
) -> PolicyOut:
    return PolicyOut.of(domain.get(f"{provider}/{dataset}"))


@router.put(
    "/{provider}/{dataset}",
    summary="Set a dataset's policy and its global ε cap (the dataset's provider).",
)
def set_policy(
    actor: Provider,
    domain: PoliciesDep,
    provider: ProviderSlug,
    dataset: DatasetSlug,
    body: PolicyIn,
) -> PolicyOut:
    info = domain.set(actor, f"{provider}/{dataset}", body.document, where="policy document")
    return PolicyOut.of(info)
