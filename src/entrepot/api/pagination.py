"""Paged lists: every list endpoint takes ``limit`` and ``offset`` and returns a :class:`Page`.

``limit`` is capped by the ``page_max`` setting so that no request can ask a node
for an unbounded list. ``next_offset`` is null on the last page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, Field

__all__ = ["Page", "PageParams", "page_of", "page_params"]

T = TypeVar("T")
U = TypeVar("U")

# The default page when a client does not ask; `page_max` is the ceiling.
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(ge=0, description="Items in the whole list.")
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Items per page.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")] = 0,
) -> PageParams:
    """The page a request asks for, with ``limit`` capped at the ``page_max`` setting."""
    cap: int = request.app.state.node.settings.page_max
    return PageParams(limit=min(limit, cap), offset=offset)


def page_of(rows: Sequence[U], params: PageParams, convert: Callable[[U], T]) -> Page[T]:
    """Slice ``rows`` to the requested page and convert each item to its response model."""
    window = rows[params.offset : params.offset + params.limit]
    end = params.offset + len(window)
    return Page[T](
        items=[convert(row) for row in window],
        total=len(rows),
        limit=params.limit,
        offset=params.offset,
        next_offset=end if end < len(rows) else None,
    )
