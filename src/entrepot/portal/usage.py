"""Metered use and the month's invoice, as a table and as the CSV the CLI writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from entrepot.portal._web import Visit, visit

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
_ROLES = ("consumer", "provider", "operator")
Month = Annotated[str, Query(max_length=7, pattern=r"^(\d{4}-\d{2})?$")]


def _month(month: str) -> str:
    return month or datetime.now(UTC).strftime("%Y-%m")


@router.get("/usage")
def usage_page(here: Visitor, month: Month = "") -> Response:
    chosen = _month(month)
    return here.page(
        lambda: here.render(
            "usage.html", title="Usage", month=chosen, invoice=here.client.usage(chosen)
        ),
        roles=_ROLES,
    )


@router.get("/usage.csv")
def usage_csv(here: Visitor, month: Month = "") -> Response:
    chosen = _month(month)

    def build() -> Response:
        text = here.client.usage_csv(chosen)
        name = re.sub(r"[^0-9-]", "", chosen)
        return here.finish(
            Response(
                text,
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="usage-{name}.csv"'},
            )
        )

    return here.page(build, roles=_ROLES)
