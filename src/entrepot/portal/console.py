"""The consumer's query console: SQL, ε with its expected error, answers and receipts.

The expected error comes from the very plan the answer is released with: the console
prices the SQL as the coordinator does (:class:`~entrepot.exchange.query.AggregateQuery`
against the dataset's public policy, standard and latest version) and reads the plan's
half-widths (:meth:`entrepot.privacy.Plan.halfwidths`). That reads no data and spends
nothing, so it is neither logged nor charged. A run is answered as the API's route
answers it (:func:`~entrepot.api.routers.queries.answered`): a peer's data
(``<node>.provider.dataset``) by that node, the rest by the API's query runner, with
every step of the coordinator (contract, policy, budget, log, receipt).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import Response

from entrepot.api.routers.queries import answered, query_runner
from entrepot.errors import EntrepotError, InvalidInput, Unauthorized
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import Actor
from entrepot.portal._web import Visit, visit
from entrepot.schemas.queries import QueryIn

__all__ = ["estimate", "router"]

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Visit, Depends(visit)]
_CONSUMER = ("consumer",)


@router.get("/query")
def console_page(here: Visitor) -> Response:
    def build() -> Response:
        client = here.client
        budgets = client.budgets()
        datasets = []
        for ref in dict.fromkeys(b["dataset"] for b in budgets if b["state"] == "open"):
            page = client.catalog_show(ref)
            policy = client.policy(ref)["policy"]
            datasets.append(
                {
                    "ref": ref,
                    "title": page["title"],
                    "policy": policy,
                    "sample": _sample(page, policy),
                }
            )
        return here.render(
            "console.html",
            title="Query console",
            budgets=budgets,
            datasets=datasets,
            remote=client.access_remote(),
        )

    return here.page(build, roles=_CONSUMER)


def _sample(page: dict[str, Any], policy: dict[str, Any]) -> str:
    """A first query that passes the policy: a count by its first dimension."""
    roles = {column["name"]: column["role"] for column in page["schema"]}
    grouped = policy["columns"]["group_by"]
    key = next((c for c in grouped if roles.get(c) == "dimension"), grouped[0] if grouped else "")
    table = page["sql_name"]
    if not key:
        return f"SELECT COUNT(*) AS n FROM {table}"
    return f"SELECT {key}, COUNT(*) AS n FROM {table} GROUP BY {key}"


def _body(raw: Any) -> QueryIn:
    try:
        return QueryIn.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise InvalidInput(
            f"invalid query: {problems}", hint="write the SQL, and an ε above 0"
        ) from None


def estimate(
    exchange: Exchange,
    consumer: Actor,
    sql: str,
    epsilon: float | None,
    purpose: str | None = None,
) -> dict[str, Any]:
    """What a query (or a private join) would spend and how wide its intervals would be,
    from its text, the datasets' policies and the figures their versions released; raises
    the checker's refusal, naming its rule. The plan reads what the consumer's answers
    would tell it, so the consumer's contract on each dataset must allow the query first
    (the coordinator's check, refused with its clause)."""
    from entrepot.exchange.join import JoinRun
    from entrepot.vault import Aggregate

    request = exchange.queries.request(sql, epsilon)
    refs = request.datasets()
    exchange.contracts.authorize_all(consumer, refs, request.action, purpose)
    found = {ref: exchange.coordinator.found(ref) for ref in refs}
    operation = request.price(found).operation
    if isinstance(operation, Aggregate):
        planned = operation.plan
    elif isinstance(operation, JoinRun):
        planned = operation.plan.plan  # the join's plan holds the aggregate's
    else:
        raise InvalidInput(
            "this request has no answer to estimate", hint="ask an aggregate query or a join"
        )
    widths = planned.halfwidths()
    return {
        "dataset": " JOIN ".join(str(ref) for ref in refs),
        "epsilon": planned.epsilon,
        "delta": planned.delta,
        "mechanism": planned.mechanism,
        "groups": len(planned.groups),
        "confidence": 0.95,
        "aggregates": [
            {"name": a.name, "function": a.function, "halfwidth": widths.get(a.name)}
            for a in planned.query.aggregates
        ],
        "near_zero_threshold": planned.near_zero_threshold,
        "notes": list(planned.notes),
    }


@router.post("/portal/estimate")
async def estimate_query(request: Request, here: Visitor) -> Response:
    raw = await _json(request)

    def build() -> dict[str, Any]:
        assert here.actor is not None
        body = _body(raw)
        return estimate(here.client.exchange, here.actor, body.sql, body.epsilon, body.purpose)

    return await here.json_async(build, roles=_CONSUMER)


@router.post("/portal/query")
async def run_query(request: Request, here: Visitor) -> Response:
    raw = await _json(request)
    refused = here.refusal(_CONSUMER)
    if refused is not None or here.actor is None:
        return here.json_error(refused or Unauthorized("you are signed out", hint="sign in"))
    try:
        body = _body(raw)
        answer = await answered(request, here.actor, body, query_runner(request))
    except EntrepotError as error:
        return here.json_error(error)
    return here.finish(Response(answer, media_type="application/json"))


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None
