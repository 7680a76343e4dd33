"""Releases and Delta Sharing profiles on the wire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt

__all__ = [
    "SHARING_PREFIX",
    "ReleaseIn",
    "ReleaseOut",
    "ReleasePlanOut",
    "RevokeIn",
    "ShareProfile",
]

# Where a node serves the Delta Sharing protocol, under its base URL.
SHARING_PREFIX = "/delta-sharing"


class ReleaseIn(BaseModel):
    """What a release is asked to be; unset fields take the dataset policy's floors."""

    dataset: str = Field(examples=["riverside-hospitals/outpatient-visits"])
    consumer: str = Field(description="The consumer organization the release is made for.")
    kind: Literal["anonymized", "synthetic"] = "anonymized"
    k: StrictInt | None = Field(
        None, ge=1, le=1_000_000, description="k-anonymity: units per class."
    )
    l: StrictInt | None = Field(  # noqa: E741
        None, ge=1, le=10_000, description="l-diversity of the sensitive column."
    )
    t: StrictFloat | None = Field(None, ge=0, le=1, description="t-closeness (total variation).")
    max_suppression: StrictFloat | None = Field(
        None, ge=0, le=1, description="The largest share of rows the release may drop."
    )
    sensitive: str | None = Field(None, max_length=200, description="The column l and t hold on.")
    epsilon: StrictFloat | None = Field(None, gt=0, le=100, description="ε of a synthetic release.")
    rows: StrictInt | None = Field(None, ge=1, description="Rows of a synthetic release.")
    pseudonyms: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Identifier columns kept as pseudonyms (a keyed hash under a key of "
        "this release alone): the privacy unit or an identifier that names one row.",
        examples=[["patient_id"]],
    )

    def spec(self) -> dict[str, Any]:
        return self.model_dump(exclude={"dataset", "consumer"}, exclude_none=True)


class ReleaseOut(BaseModel):
    release: str = Field(examples=["R-1"])
    dataset: str
    version: int
    consumer: str
    kind: str
    state: Literal["active", "revoked"]
    spec: dict[str, Any]
    rows: int
    size_bytes: int
    sha256: str
    epsilon: float
    log_index: int | None
    created_by: str
    created_at: str
    revoked_by: str | None
    revoked_at: str | None
    revoked_reason: str | None = Field(
        description="Why it was revoked, as its provider said: shown to its provider and "
        "the node's operators only, and never logged."
    )
    grant: str | None = Field(
        examples=["GRANT-1"],
        description="The grant it was made under: its consumer reads it only while that "
        "grant is in force. None for a release made before migration 0023 that no grant "
        "was made before: no consumer reads it.",
    )
    share: dict[str, str] = Field(description="Where Delta Sharing lists it: share, schema, table.")
    report: dict[str, Any] = Field(
        description="The generalization, information loss and risk (anonymized), or the "
        "method and tree (synthetic); figures about the rows before release are its "
        "provider's only."
    )
    receipt: dict[str, Any] | None = Field(
        None, description="The signed receipt of the release's log entry, when it was just made."
    )


class ReleasePlanOut(BaseModel):
    dataset: str
    version: int
    consumer: str
    kind: str
    report: dict[str, Any]


class RevokeIn(BaseModel):
    reason: str = Field(
        "",
        max_length=500,
        description="Why: kept with the release for its provider and the node's operators, "
        "never logged.",
    )


class ShareProfile(BaseModel):
    """A Delta Sharing profile file (version 1), as the official clients read it."""

    shareCredentialsVersion: int = Field(1, description="The profile format's version: 1.")
    endpoint: str
    bearerToken: str
    expirationTime: str | None = None
