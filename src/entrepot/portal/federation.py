"""The node in its federation, for operators: its name, URL and key, and its trusted
peers with their last catalog pull and how it went (``entrepot node id`` and
``entrepot peer list``). Peers are added and removed at the node's home, never here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from entrepot.portal._web import Visit, visit

__all__ = ["fingerprint", "router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
_OPERATOR = ("operator",)


def fingerprint(key: str) -> str:
    """A key's first 64 bits in groups of four hex digits, as an operator reads it aloud
    to a peer's (the whole key is shown beside it)."""
    return " ".join(key[i : i + 4] for i in range(0, 16, 4))


@router.get("/federation")
def federation_page(here: Visitor) -> Response:
    def build() -> Response:
        found = here.client.federation()
        return here.render(
            "federation.html",
            title="Federation",
            node={**found["node"], "fingerprint": fingerprint(found["node"]["key"])},
            peers=[{**p, "fingerprint": fingerprint(p["key"])} for p in found["peers"]],
        )

    return here.page(build, roles=_OPERATOR)
