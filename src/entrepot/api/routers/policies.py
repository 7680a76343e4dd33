"""Dataset policies: the analysis rules in force on a dataset.

Every account reads them: they are public, and consumers need them to phrase
queries that pass. Only the dataset's provider sets them; another tenant's
dataset answers 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from entrepot.api._exchange import exchange_of
from entrepot.api.auth import AnyActor, Provider
from entrepot.api.routers.catalog import DatasetSlug, ProviderSlug
from entrepot.exchange.policies import Policies
from entrepot.schemas.policies import PolicyIn, PolicyOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/policies", tags=["policies"])


def policies(request: Request) -> Policies:
    return exchange_of(request).policies


PoliciesDep = Annotated[Policies, Depends(policies)]


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
