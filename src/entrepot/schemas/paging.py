"""The one shape of every list: a page of items, the list's total and the next offset.

Lists the node keeps are paged in the database (SQL ``LIMIT``/``OFFSET`` and a ``COUNT``
over the same filter), the log by entry index, so a page costs its own size, never the
whole list's; the few standards and purposes the package ships are cut in memory.
``next_offset`` is null on the last page; a client reads a whole list by following it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Page", "page_body"]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A window of a list, ``limit`` items from ``offset``, with the list's total."""

    # Built when the API first describes a page, not by every command that imports
    # page_body.
    model_config = ConfigDict(defer_build=True)

    items: list[T] = Field(description="The items of this page, in the list's order.")
    total: int = Field(ge=0, description="Items in the whole list.", examples=[120])
    limit: int = Field(ge=1, description="Items asked for per page.", examples=[50])
    offset: int = Field(ge=0, description="Items of the list before this page.", examples=[0])
    next_offset: int | None = Field(
        description="Offset of the next page; null on the last.", examples=[50]
    )


def page_body(items: Sequence[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The JSON body of a page: ``items`` found from ``offset``, of a list of ``total``."""
    end = offset + len(items)
    return {
        "items": list(items),
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": end if end < total and items else None,
    }
