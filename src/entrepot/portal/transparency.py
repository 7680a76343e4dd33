"""The transparency log: a filterable timeline, the signed tree head, and proofs for the
browser to check itself (SHA-256 and Ed25519 in WebCrypto, never trusting this server).

Every account reads the log, as over the API; an auditor or operator may sign a new
head. The proof endpoint returns the API's inclusion proof body unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from entrepot.errors import EntrepotError, InvalidInput, NotFound
from entrepot.portal._web import Visit, error_body, visit
from entrepot.transparency import Kind

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
# Entries one page of the timeline shows, newest first.
_SHOWN = 100


def _since(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a date", hint="give a day as YYYY-MM-DD, e.g. 2026-01-31"
        ) from None


@router.get("/transparency")
def transparency_page(
    here: Visitor,
    dataset: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=40)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    index: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    def build() -> Response:
        client = here.client
        chosen_kind = kind if kind in {k.value for k in Kind} else ""
        context: dict[str, Any] = {}
        try:
            found = client.audit_entries(
                dataset=dataset or None,
                kind=chosen_kind or None,
                since=_since(since),
                limit=_SHOWN,
            )
        except EntrepotError as error:
            found, context["filter_error"] = [], error_body(error)
        try:
            head = client.audit_head()
        except NotFound:
            head = None
        assert here.actor is not None
        return here.render(
            "transparency.html",
            title="Transparency log",
            entries=list(reversed(found)),
            head=head,
            kinds=[k.value for k in Kind],
            datasets=[d["dataset"] for d in client.catalog_datasets()],
            chosen={"dataset": dataset, "kind": chosen_kind, "since": since},
            focus=index,
            may_sign=here.actor.role in ("auditor", "operator"),
            **context,
        )

    return here.page(build)


@router.post("/transparency/head")
async def sign_head(request: Request, here: Visitor) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()

    def build() -> Response:
        here.client.audit_sign_head()
        return here.redirect("/transparency")

    return await here.page_async(build, roles=("auditor", "operator"))


@router.get("/portal/audit/proof/{index}")
async def inclusion_proof(
    here: Visitor, index: Annotated[int, Path(ge=0, le=2**53 - 1)]
) -> Response:
    """Entry ``index``, its audit path and the signed head it leads to (as the API's)."""
    return await here.json_async(lambda: here.client.audit_inclusion(index))
