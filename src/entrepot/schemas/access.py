"""Access contracts on the wire: requests, grants, purposes and their bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictFloat, StrictInt, model_validator

from entrepot._numbers import MAX_AMOUNT, MAX_COUNT, MAX_EPSILON
from entrepot._text import NOTE_MAX
from entrepot.schemas._types import UtcDateTime
from entrepot.schemas.catalog import NODE_DATASET_REF
from entrepot.vault.refs import SLUG_MAX

__all__ = [
    "Action",
    "Duty",
    "GrantCreate",
    "GrantOut",
    "PurposeOut",
    "Reason",
    "RemoteContractOut",
    "RequestCreate",
    "RequestOut",
    "TransitionOut",
    "Until",
]


# The contract actions, spelled out so the OpenAPI schema lists them (tests compare to ACTIONS).
Action = Literal["aggregate-query", "private-join", "release-download"]


Duty = Literal["attribution"]


class TransitionOut(BaseModel):
    subject: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str
    at: UtcDateTime
    reason: str


class RequestOut(BaseModel):
    id: str = Field(examples=["REQ-7"])
    consumer: str
    dataset: str
    purpose: str
    actions: list[str]
    epsilon: float
    valid_from: date
    valid_until: date
    note: str
    state: Literal["requested", "granted", "refused"]
    created_at: UtcDateTime
    grant: str | None
    history: list[TransitionOut]


class GrantOut(BaseModel):
    id: str = Field(examples=["GRANT-3"])
    request: str
    consumer: str
    dataset: str
    provider: str
    purpose: str
    actions: list[str]
    epsilon: float
    max_queries: int | None
    price_per_query: Decimal
    price_per_epsilon: Decimal
    currency: str
    duties: list[str]
    valid_from: date
    valid_until: date
    state: Literal["granted", "revoked", "expired"]
    created_at: UtcDateTime
    history: list[TransitionOut]


class RemoteContractOut(BaseModel):
    """A request or grant of yours on another node, as this node last read it there."""

    node: str = Field(examples=["riverside"])
    id: str = Field(examples=["GRANT-3"])
    dataset: str = Field(examples=["riverside-hospitals/outpatient-visits"])
    state: str = Field(examples=["granted"])
    purpose: str = Field(examples=["public-health-surveillance"])
    epsilon: float = Field(examples=[1.0])
    valid_until: str = Field(examples=["2026-12-31"])
    refreshed_at: UtcDateTime
    fresh: bool = Field(description="Whether this read reached the node; else the last copy.")


class PurposeOut(BaseModel):
    id: str
    label: str
    description: str
    broader: str | None
    dpv: str | None


def _default_actions() -> list[Action]:
    return ["aggregate-query"]


def _default_duties() -> list[Duty]:
    return ["attribution"]


def _not_over(day: date) -> date:
    # A contract's period runs to the end of its last day, UTC: today is still in force.
    if day < datetime.now(UTC).date():
        raise ValueError("the date is in the past; give one from today (UTC) on")
    return day


Until = Annotated[
    date,
    AfterValidator(_not_over),
    Field(description="The last day of the contract (UTC): today or later."),
]


class RequestCreate(BaseModel):
    dataset: str = Field(
        pattern=NODE_DATASET_REF,
        max_length=3 * SLUG_MAX + 2,
        examples=["riverside-hospitals/outpatient-visits"],
        description="provider/dataset, or node:provider/dataset for a peer's dataset.",
    )
    purpose: str = Field(min_length=1, max_length=100, examples=["public-health-surveillance"])
    epsilon: StrictFloat = Field(gt=0, le=MAX_EPSILON, examples=[3.0])
    until: Until
    since: date | None = Field(None, description="The first day (UTC); today if omitted.")
    actions: list[Action] = Field(default_factory=_default_actions, min_length=1)
    note: str = Field("", max_length=NOTE_MAX)

    @model_validator(mode="after")
    def _period(self) -> RequestCreate:
        if self.since is not None and self.since > self.until:
            raise ValueError("since is after until: the period is empty")
        return self


class GrantCreate(BaseModel):
    epsilon: StrictFloat | None = Field(None, gt=0, le=MAX_EPSILON, examples=[2.0])
    max_queries: StrictInt | None = Field(None, ge=1, le=MAX_COUNT)
    price_per_query: Decimal = Field(Decimal(0), ge=0, le=MAX_AMOUNT, decimal_places=2)
    price_per_epsilon: Decimal = Field(Decimal(0), ge=0, le=MAX_AMOUNT, decimal_places=2)
    actions: list[Action] | None = Field(None, min_length=1)
    until: Until | None = None
    duties: list[Duty] = Field(default_factory=_default_duties)


class Reason(BaseModel):
    reason: str = Field("", max_length=NOTE_MAX)
