"""The catalog (search with facets, dataset cards) and a dataset's page with its
request-access form."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from entrepot.errors import EntrepotError, InvalidInput
from entrepot.portal._web import Visit, error_body, form_text, visit
from entrepot.portal.plain import policy_line, policy_sentences
from entrepot.schemas.access import RequestCreate

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
# Cards on one catalog page; a search narrows a larger catalog.
_CARDS = 60


@router.get("/")
def catalog_page(
    here: Visitor,
    q: Annotated[str, Query(max_length=500)] = "",
    provider: Annotated[list[str] | None, Query(max_length=200)] = None,
    standard: Annotated[list[str] | None, Query(max_length=200)] = None,
) -> Response:
    def build() -> Response:
        client = here.client
        words = q.strip()
        found = client.catalog_search(words) if words else client.catalog_datasets()
        chosen = {"provider": set(provider or ()), "standard": set(standard or ())}
        facets = {
            name: sorted(Counter(d[name] for d in found).items())
            for name in ("provider", "standard")
        }
        shown = [
            d
            for d in found
            if all(not wanted or d[name] in wanted for name, wanted in chosen.items())
        ]
        cards = [
            {**d, "policy": policy_line(client.policy(d["dataset"])["policy"])}
            for d in shown[:_CARDS]
        ]
        return here.render(
            "catalog.html",
            title="Catalog",
            q=words,
            facets=facets,
            chosen=chosen,
            cards=cards,
            total=len(shown),
        )

    return here.page(build)


def _dataset_context(here: Visit, ref: str) -> dict[str, Any]:
    client = here.client
    page = client.catalog_show(ref)
    policy = client.policy(ref)
    context: dict[str, Any] = {
        "title": page["title"],
        "page": page,
        "policy": policy,
        "sentences": policy_sentences(policy["policy"], page["standard"]["privacy_unit"]),
        "owner": page["rows"] is not None,
    }
    assert here.actor is not None
    if here.actor.role == "consumer":
        context["purposes"] = client.purposes()
        context["requests"] = [r for r in client.access_requests() if r["dataset"] == ref]
    return context


@router.get("/datasets/{provider}/{dataset}")
def dataset_page(here: Visitor, provider: str, dataset: str) -> Response:
    ref = f"{provider}/{dataset}"
    return here.page(lambda: here.render("dataset.html", **_dataset_context(here, ref)))


@router.post("/datasets/{provider}/{dataset}/access")
async def request_access(request: Request, here: Visitor, provider: str, dataset: str) -> Response:
    form = await request.form()
    if not here.csrf_ok(form):
        return here.refused_csrf()
    ref = f"{provider}/{dataset}"
    fields = {
        "dataset": ref,
        "purpose": form_text(form, "purpose"),
        "epsilon": form_text(form, "epsilon"),
        "until": form_text(form, "until"),
        "note": form_text(form, "note"),
    }

    def build() -> Response:
        try:
            body = _request_form(fields)
            made = here.client.request_access(
                ref, purpose=body.purpose, epsilon=body.epsilon, until=body.until, note=body.note
            )
        except EntrepotError as error:
            context = _dataset_context(here, ref)
            return here.render(
                "dataset.html", status=error.status, form_error=error_body(error), **context
            )
        notice = f"{made['id']} sent to the provider"
        return here.render("dataset.html", **_dataset_context(here, ref), notice=notice)

    return await here.page_async(build, roles=("consumer",))


def _request_form(fields: dict[str, str]) -> RequestCreate:
    """The form as the API's request body, checked by the same model."""
    try:
        return RequestCreate.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise InvalidInput(
            f"the request form is not complete: {problems}",
            hint="give a purpose, an ε above 0 and a last day in the future",
        ) from None
