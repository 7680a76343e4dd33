"""Field types shared by the routers' response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator

from entrepot.clock import as_utc

__all__ = ["UtcDateTime"]

# The metadata DB stores UTC without an offset; RFC 3339 (OpenAPI date-time) needs one.
UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
