"""Private queries: a consumer's SQL answered with differential privacy, and a receipt.

The coordinator (:class:`~entrepot.exchange.query.Queries`) checks the contract,
the policy and the budget, and logs every answer and refusal; it runs in a query
worker process (:mod:`entrepot.api._query_workers`), so this router only passes the
token's actor, awaits the answer and shapes it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from entrepot.api._exchange import exchange_of
from entrepot.api._query_workers import QueryRunner, QueueFull
from entrepot.api.auth import Consumer
from entrepot.api.errors import error_response
from entrepot.api.openapi import operation_id
from entrepot.api.routers._client import client_of
from entrepot.client.local import answer_body
from entrepot.errors import EntrepotError
from entrepot.exchange import Exchange
from entrepot.exchange.accounts import Actor
from entrepot.federation.remote import names_a_node
from entrepot.schemas.queries import OverlapIn, QueryIn, QueryOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/queries", tags=["queries"], generate_unique_id_function=operation_id)


def query_runner(request: Request) -> QueryRunner:
    """The app's query runner, which its lifespan starts and stops."""
    runner: QueryRunner | None = getattr(request.app.state, "query_runner", None)
    if runner is None:
        raise EntrepotError(
            "this server runs no private queries: the app was started without its lifespan",
            hint="serve the app with `entrepot serve`, or with uvicorn's lifespan on",
        )
    return runner


@router.post(
    "",
    summary="Run a private aggregate query (consumer with a grant).",
    response_model=QueryOut,
)
async def run_query(
    request: Request,
    actor: Consumer,
    body: QueryIn,
    runner: Annotated[QueryRunner, Depends(query_runner)],
) -> Response:
    """The SQL is checked against the dataset's policy and the grant, ε is reserved from
    the budget, and the answer carries noisy values, their error bars and a signed
    receipt; every answer and refusal is written to the transparency log. A query of
    a peer's data (`<node>.provider.dataset`) is answered by that node, with its
    receipt; a private join of two nodes' datasets by the holder's node that leads it,
    with each holder's receipt in `receipts`."""
    try:
        answer = await answered(request, actor, body, runner)
    except QueueFull as full:
        return error_response(full, headers={"Retry-After": str(full.details["retry_after_s"])})
    return Response(answer, media_type="application/json")


async def answered(request: Request, actor: Actor, body: QueryIn, runner: QueryRunner) -> bytes:
    """The body of the answer to ``body`` as ``actor`` asks it, through every door that
    runs queries (this route, the portal's console): a peer's data by that node, the
    rest by the query workers. Raises the refusal (:class:`QueueFull` when the workers'
    queue is full)."""
    if names_a_node(body.sql):
        client = client_of(request, actor)
        result = await run_in_threadpool(
            lambda: client.query(body.sql, epsilon=body.epsilon, purpose=body.purpose)
        )
        return json.dumps(result).encode()
    return await runner.run(
        actor, body.sql, epsilon=body.epsilon, purpose=body.purpose, render=render
    )


@router.post(
    "/overlap",
    summary="How many people two datasets share, noised (consumer with both grants).",
    response_model=QueryOut,
)
async def join_overlap(
    actor: Consumer,
    body: OverlapIn,
    runner: Annotated[QueryRunner, Depends(query_runner)],
    exchange: Annotated[Exchange, Depends(exchange_of)],
) -> Response:
    """A private join of the two datasets on their link keys, answering COUNT(DISTINCT)
    of the people in both with differential privacy: ε is spent on each dataset, both
    grants must permit `private-join`, and the answer is a query's answer."""
    from entrepot.exchange.join import overlap_sql

    sql = overlap_sql(exchange.vault, body.left, body.right)
    try:
        answer = await runner.run(
            actor, sql, epsilon=body.epsilon, purpose=body.purpose, render=render
        )
    except QueueFull as full:
        return error_response(full, headers={"Retry-After": str(full.details["retry_after_s"])})
    return Response(answer, media_type="application/json")


def render(result: dict[str, Any]) -> bytes:
    """The response body of one answer, shaped where the query ran as the local client
    shapes it."""
    return json.dumps(answer_body(result), ensure_ascii=False, separators=(",", ":")).encode()
