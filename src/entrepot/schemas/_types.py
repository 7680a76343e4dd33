"""Field types shared by the routers' response models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["UtcDateTime"]


def _utc(moment: datetime) -> datetime:
    # The metadata DB stores UTC without an offset; RFC 3339 (OpenAPI date-time) needs one.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
