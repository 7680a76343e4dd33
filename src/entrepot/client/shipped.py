"""The standards and code lists shipped with entrepot, read in-process: no node needed.

Apart from :mod:`entrepot.client.local` because listing them opens no database: the
CLI's ``standard`` commands, without a login, load neither SQLAlchemy nor a node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from entrepot import standards as shipped

__all__ = ["ShippedStandards", "window"]

T = TypeVar("T")


def window(items: Sequence[T], limit: int | None, offset: int) -> Sequence[T]:
    """A window of a short list the package ships (standards, purposes): no database."""
    return items[offset:] if limit is None else items[offset : offset + limit]


class ShippedStandards:
    """The standards and code lists shipped with entrepot: no node needed."""

    def standards(self, *, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        from entrepot.schemas.standards import summary_of

        names = window(shipped.names(), limit, offset)
        return [summary_of(shipped.get(name)).model_dump() for name in names]

    def standards_page(self, limit: int, offset: int = 0) -> dict[str, Any]:
        """A page of :meth:`standards` (the shipped few, listed from the package)."""
        from entrepot.schemas.paging import page_body

        found = self.standards(limit=limit, offset=offset)
        return page_body(found, len(shipped.names()), limit, offset)

    def standard(self, name: str) -> dict[str, Any]:
        """A standard by name, or (on this machine only) by Table Schema file."""
        from entrepot.schemas.standards import StandardOut

        return StandardOut.model_validate(shipped.get(name).summary()).model_dump()

    def codelist(self, name: str) -> dict[str, Any]:
        from entrepot.schemas.standards import CodeListOut

        return CodeListOut.of(shipped.codelist(name)).model_dump()
