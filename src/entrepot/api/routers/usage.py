"""Usage and invoices: a month's metered use, as JSON or CSV.

A consumer sees what it owes, a provider what its datasets earned; operators may
name any party. Figures are the metering module's, summed from the ledger rows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from entrepot.api.auth import AnyActor
from entrepot.api.openapi import operation_id
from entrepot.api.routers._client import client_of
from entrepot.exchange.metering import MONTH_PATTERN
from entrepot.schemas.catalog import SLUG
from entrepot.schemas.usage import InvoiceOut
from entrepot.vault.refs import SLUG_MAX

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["usage"], generate_unique_id_function=operation_id)

# The patterns document the parameters; the metering service reads them and words a refusal.
Month = Annotated[
    str,
    Query(
        max_length=100,
        description="YYYY-MM, from 1970 on.",
        examples=["2026-11"],
        json_schema_extra={"pattern": f"^{MONTH_PATTERN}$"},
    ),
]
Party = Annotated[
    str | None,
    Query(
        max_length=SLUG_MAX,
        description="Organization (operators only).",
        json_schema_extra={"pattern": SLUG},
    ),
]


@router.get(
    "/usage",
    response_model=InvoiceOut,
    summary="A month's usage and invoice (JSON; `format=csv` for CSV).",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def show_usage(
    request: Request,
    actor: AnyActor,
    month: Month,
    party: Party = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> InvoiceOut | PlainTextResponse:
    """A consumer sees what it owes, a provider what its datasets earned, per grant:
    queries, ε spent and the price."""
    client = client_of(request, actor)
    if format == "csv":
        return PlainTextResponse(client.usage_csv(month, party), media_type="text/csv")
    return InvoiceOut.model_validate(client.usage(month, party))
