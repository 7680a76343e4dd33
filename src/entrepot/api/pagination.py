"""Paged lists: every list route takes ``limit`` and ``offset`` and returns a :class:`Page`.

``limit`` is capped by the ``page_max`` setting so that no request can ask a node
for an unbounded list. The window is passed down to the services, which page in the
database; a route only validates the body its client method made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

from entrepot.schemas.paging import Page

__all__ = ["DEFAULT_LIMIT", "Page", "PageParams", "page_of", "page_params"]

T = TypeVar("T")

# The default page when a client does not ask; `page_max` is the ceiling.
DEFAULT_LIMIT = 50


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    request: Request,
    limit: Annotated[
        int, Query(ge=1, le=10_000, description="Items per page (capped by the node).")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip.")] = 0,
) -> PageParams:
    """The page a request asks for, with ``limit`` capped at the ``page_max`` setting."""
    cap: int = request.app.state.node.settings.page_max
    return PageParams(limit=min(limit, cap), offset=offset)


def page_of(body: dict[str, Any], convert: Callable[[Any], T]) -> Page[T]:
    """The page a client method answered, its items converted to their response model."""
    return Page[T](
        items=[convert(item) for item in body["items"]],
        total=body["total"],
        limit=body["limit"],
        offset=body["offset"],
        next_offset=body["next_offset"],
    )
