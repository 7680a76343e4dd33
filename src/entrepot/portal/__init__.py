"""The web portal: the exchange in a browser, over the same core as the API and the CLI.

Server-rendered Jinja2 pages and a few small scripts of our own, served by the API app
at ``/`` (``entrepot serve``). Every page acts as the signed-in account through the
node's one client interface (:class:`~entrepot.client.local.LocalClient`, as every API
route); private queries go to the API's own query runner. No rule lives here.

::

    /                         catalog: search, facets, dataset cards
    /datasets/{p}/{d}         a dataset: schema, standard, versions, policy, request access
    /query                    the consumer's console: SQL, ε with its expected error, answers
    /provider                 publish a file, the access inbox, policies
    /transparency             the log, the signed head, verified in the browser
    /usage                    metered use and the month's invoice, as CSV too
    /federation               the node's name, URL and key, its peers' last sync (operators)
    /signin, /signout         the session cookie
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response

from entrepot.errors import EntrepotError
from entrepot.portal import (
    _web,
    catalog,
    console,
    federation,
    provider,
    signin,
    static,
    transparency,
    usage,
)

__all__ = ["ROUTERS", "UPLOAD_PATHS", "error_page", "router"]

# Portal paths that take a dataset upload (limited by max_upload_bytes, as the API's).
UPLOAD_PATHS = ("/provider/publish",)

# Each page module's routes: the portal is these and nothing else.
ROUTERS = tuple(
    module.router
    for module in (signin, static, catalog, console, provider, transparency, usage, federation)
)

router = APIRouter(include_in_schema=False)
for _routes in ROUTERS:
    router.include_router(_routes)

_ENDPOINTS = frozenset(
    getattr(route, "endpoint", None) for routes in ROUTERS for route in routes.routes
)


async def error_page(request: Request, error: EntrepotError) -> Response | None:
    """A refusal met before a portal page's code runs (an address whose parameters do not
    pass, say), as a page rather than the API's JSON; None for any other route."""
    if request.scope.get("endpoint") not in _ENDPOINTS:
        return None
    error.hint = "check the page's address, or go back and follow the page's own links"
    here = await _web.visit(request)
    return await anyio.to_thread.run_sync(here.failed, error)
