"""Releases: anonymized and synthetic rows made for one consumer under the provider's rules.

The dataset's provider plans, makes and revokes releases; the consumer a release was
made for lists it, shows it and reads it over Delta Sharing (:mod:`.sharing`), with the
profile ``POST /v1/sharing/profile`` gives it, while the grant it was made under is in
force. Another tenant's release answers 404, as does a consumer's once that grant ended.
A revocation's reason is shown to the release's provider and the node's operators.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from entrepot.api.auth import AnyActor, Consumer, Provider
from entrepot.api.openapi import operation_id
from entrepot.api.pagination import Page, PageParams, page_of, page_params
from entrepot.api.routers._client import client_of
from entrepot.schemas.paging import page_body
from entrepot.schemas.releases import (
    SHARING_PREFIX,
    ReleaseIn,
    ReleaseOut,
    ReleasePlanOut,
    RevokeIn,
    ShareProfile,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["releases"], generate_unique_id_function=operation_id)

Paging = Annotated[PageParams, Depends(page_params)]
ReleaseId = Path(pattern=r"^[Rr]-[0-9]{1,12}$", examples=["R-1"])


@router.post(
    "/releases/plan",
    summary="What an anonymized release would be: generalization, loss, risk (its provider).",
)
def plan_release(request: Request, actor: Provider, body: ReleaseIn) -> ReleasePlanOut:
    """Nothing is made or charged; refusals are logged as for a release."""
    client = client_of(request, actor)
    return ReleasePlanOut.model_validate(
        client.release_plan(body.dataset, body.consumer, **body.spec())
    )


@router.post("/releases", summary="Make a release for a consumer (the dataset's provider).")
def create_release(request: Request, actor: Provider, body: ReleaseIn) -> ReleaseOut:
    """A synthetic release's ε is debited from the consumer's grant and the dataset's cap."""
    client = client_of(request, actor)
    return ReleaseOut.model_validate(
        client.release_create(body.dataset, body.consumer, **body.spec())
    )


@router.get("/releases", summary="Releases: a provider's of its datasets, a consumer's own.")
def list_releases(
    request: Request,
    actor: AnyActor,
    paging: Paging,
    state: Literal["active", "revoked"] | None = Query(None, description="Only these."),
) -> Page[ReleaseOut]:
    """Oldest first, each with its Delta Sharing table and its report."""
    found = client_of(request, actor).releases(state=state)
    window = found[paging.offset : paging.offset + paging.limit]
    body = page_body(window, len(found), paging.limit, paging.offset)
    return page_of(body, ReleaseOut.model_validate)


@router.get("/releases/{release}", summary="One release, with its report.")
def show_release(request: Request, actor: AnyActor, release: str = ReleaseId) -> ReleaseOut:
    return ReleaseOut.model_validate(client_of(request, actor).release_show(release))


@router.post("/releases/{release}/revoke", summary="Stop a release at once (its provider).")
def revoke_release(
    request: Request, actor: Provider, body: RevokeIn, release: str = ReleaseId
) -> ReleaseOut:
    client = client_of(request, actor)
    return ReleaseOut.model_validate(client.release_revoke(release, body.reason))


@router.post(
    "/sharing/profile",
    summary="A Delta Sharing profile with a new sharing token of your account (consumers).",
)
def share_profile(request: Request, actor: Consumer) -> ShareProfile:
    """Save it as a `.share` file: `delta_sharing.load_as_pandas("x.share#share.schema.table")`.
    The token is new and shown once; revoke it like any other."""
    profile = ShareProfile.model_validate(client_of(request, actor).share_profile())
    settings = request.app.state.exchange.settings
    if settings.public_url is None:
        # The address the caller reached, not the configured host and port.
        profile.endpoint = str(request.base_url).rstrip("/") + SHARING_PREFIX
    return profile
