"""The catalog (search with facets, dataset cards) and a dataset's page with its
request-access form."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from entrepot.api.routers.catalog import ProviderFacet, RegionFacet, SectorFacet, StandardFacet
from entrepot.errors import EntrepotError, InvalidInput
from entrepot.portal._web import Visit, error_body, form_text, visit
from entrepot.portal.plain import policy_line, policy_sentences
from entrepot.schemas.access import RequestCreate

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
# Cards on one catalog page; a search narrows a larger catalog.
_CARDS = 60
# Datasets a search over other nodes too finds at most (this node's and the peers').
_FEDERATED = 500


# The catalog's facets, in the order the page shows them. Their values are read as the
# API's catalog routes read them, value by value: one the API refuses is refused here.
_FACETS = ("provider", "standard", "region", "sector")


def _values(card: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """A dataset's value of each facet, as (value the filter takes, label shown)."""
    sector = card["sector"]
    return {
        "provider": [(card["dataset"].partition("/")[0], card["provider"])],
        "standard": [(card["standard"], card["standard"])],
        "region": [(r["code"], r["label"]) for r in card["regions"]],
        "sector": [] if sector is None else [(sector["code"], sector["label"])],
    }


def _facet_counts(found: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, int]]]:
    """Each facet's values among ``found``, by label, with how many datasets have each."""
    counts: dict[str, Counter[tuple[str, str]]] = {name: Counter() for name in _FACETS}
    for card in found:
        for name, values in _values(card).items():
            counts[name].update(values)
    return {
        name: [
            (value, label, n) for (value, label), n in sorted(c.items(), key=lambda i: i[0][::-1])
        ]
        for name, c in counts.items()
    }


def _kept(card: dict[str, Any], chosen: dict[str, list[str]]) -> bool:
    """Whether ``card`` has a chosen value of every facet with one chosen: the values its
    facets count it under, so a ticked value shows as many cards as its count says."""
    values = _values(card)
    return all(
        not wanted or any(value in wanted for value, _label in values[name])
        for name, wanted in chosen.items()
    )


@router.get("/")
def catalog_page(
    here: Visitor,
    q: Annotated[str, Query(max_length=500)] = "",
    provider: ProviderFacet = None,
    standard: StandardFacet = None,
    region: RegionFacet = None,
    sector: SectorFacet = None,
    nodes: Annotated[str, Query(max_length=3, pattern="^(all)?$")] = "",
) -> Response:
    def build() -> Response:
        client = here.client
        words = q.strip()
        chosen = {
            "provider": sorted(set(provider or ())),
            "standard": sorted(set(standard or ())),
            "region": sorted(set(region or ())),
            "sector": sorted(set(sector or ())),
        }
        federated = bool(nodes) and bool(words)
        if federated:
            # Each search over other nodes pulls every trusted peer's feed: one per page.
            # The words alone find what the facets count; the cards are those of them
            # that the ticked values keep.
            found = client.catalog_search_federated(words, _FEDERATED)
            shown = [card for card in found if _kept(card, chosen)]
        else:
            found = client.catalog_search(words) if words else client.catalog_datasets()
            shown = found
        if not federated and any(chosen.values()):
            # The catalog service filters, as for the API and the CLI; the facets' counts
            # are of the words alone, so a ticked value still shows what else there is.
            shown = (
                client.catalog_search(
                    words,
                    provider=chosen["provider"],
                    standard=chosen["standard"],
                    region=chosen["region"],
                    sector=chosen["sector"],
                )
                if words
                else client.catalog_datasets(
                    chosen["provider"],
                    standard=chosen["standard"],
                    region=chosen["region"],
                    sector=chosen["sector"],
                )
            )
        home = client.node_identity()["name"] if federated else None
        cards = [
            {
                **d,
                "remote": d.get("node") not in (None, home),
                "policy": None
                if d.get("node") not in (None, home)
                else policy_line(client.policy(d["dataset"])["policy"]),
            }
            for d in shown[:_CARDS]
        ]
        return here.render(
            "catalog.html",
            title="Catalog",
            q=words,
            facets=_facet_counts(found),
            chosen=chosen,
            cards=cards,
            total=len(shown),
            nodes="all" if nodes else "",
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
        return RequestCreate.model_validate_strings(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise InvalidInput(
            f"the request form is not complete: {problems}",
            hint="give a purpose, an ε above 0 and a last day in the future",
        ) from None
