"""The portal's own scripts and style sheet, served from the package (no CDN)."""

from __future__ import annotations

import re
from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import Response

from entrepot.errors import NotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}\.(js|css)")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


@router.get("/portal/static/{name}")
def static_file(name: str) -> Response:
    match = _NAME.fullmatch(name)
    source = files("entrepot.portal") / "static" / name
    if match is None or not source.is_file():
        raise NotFound(f"no portal file {name!r}", hint="the portal's pages link their files")
    return Response(
        source.read_bytes(),
        media_type=_TYPES[match.group(1)],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
