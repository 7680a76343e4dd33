"""Dataset policies: the analysis rules in force on a dataset.

Every account reads them: they are public, and consumers need them to phrase
queries that pass. Only the dataset's provider sets them; another tenant's
dataset answers 404, as if it did not exist, and an operator's account is refused
by the rule ``provider_decides`` (:func:`~entrepot.exchange.policies.require_provider`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from entrepot.api.auth import AnyActor, require_role
from entrepot.api.openapi import operation_id
from entrepot.api.routers._client import client_of
from entrepot.api.routers.catalog import DatasetSlug, ProviderSlug
from entrepot.exchange.accounts import Actor, Role
from entrepot.schemas.policies import PolicyIn, PolicyOut

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/policies", tags=["policies"], generate_unique_id_function=operation_id
)

# An operator's account goes on to the rule that refuses it by name, the rule the
# node's own CLI meets (`--as` an operator), so both doors answer it alike.
Setter = Annotated[Actor, Depends(require_role(Role.PROVIDER, Role.OPERATOR))]


@router.get("/{provider}/{dataset}", summary="The policy in force on a dataset.")
def show_policy(
    request: Request, actor: AnyActor, provider: ProviderSlug, dataset: DatasetSlug
) -> PolicyOut:
    """The analysis rules (aggregates, group sizes, ε per query, bounds) as the YAML
    document and its parsed form."""
    return PolicyOut.model_validate(client_of(request, actor).policy(f"{provider}/{dataset}"))


@router.put(
    "/{provider}/{dataset}",
    summary="Set a dataset's policy and its global ε cap (the dataset's provider).",
)
def set_policy(
    request: Request,
    actor: Setter,
    provider: ProviderSlug,
    dataset: DatasetSlug,
    body: PolicyIn,
) -> PolicyOut:
    """The document replaces the policy in force; the change is logged."""
    client = client_of(request, actor)
    info = client.set_policy(f"{provider}/{dataset}", body.document)
    return PolicyOut.model_validate(info)
