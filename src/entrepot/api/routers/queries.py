"""Private queries: a consumer's SQL answered with differential privacy, and a receipt.

The coordinator (:class:`~entrepot.exchange.query.Queries`) checks the contract,
the policy and the budget, and logs every answer and refusal; it runs in a query
worker process (:mod:`entrepot.api._query_workers`), so this router only passes the
token's actor, awaits the answer and shapes it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from entrepot.api._query_workers import QueryRunner, QueueFull
from entrepot.api.auth import Consumer
from entrepot.api.errors import error_response
from entrepot.errors import EntrepotError

__all__ = ["router"]

router = APIRouter(prefix="/v1/queries", tags=["queries"])


def query_runner(request: Request) -> QueryRunner:
    """The app's query runner, which its lifespan starts and stops."""
    runner: QueryRunner | None = getattr(request.app.state, "query_runner", None)
    if runner is None:
        raise EntrepotError(
            "this server runs no private queries: the app was started without its lifespan",
            hint="serve the app with `entrepot serve`, or with uvicorn's lifespan on",
        )
    return runner


class QueryIn(BaseModel):
    sql: str = Field(
        min_length=1,
        max_length=20_000,
        examples=[
            "SELECT district, COUNT(*) FROM riverside_hospitals.outpatient_visits GROUP BY district"
        ],
    )
    epsilon: float | None = Field(None, gt=0, le=1e6, description="ε to spend (policy default).")
    purpose: str | None = Field(
        None, min_length=1, max_length=100, description="Purpose (default: the grant's)."
    )


class AnswerRow(BaseModel):
    key: list[Any]
    values: list[list[float | None]] = Field(description="Per aggregate: [value, low, high].")
    other: bool


class AnswerOut(BaseModel):
    columns: list[str]
    keys: list[str]
    aggregates: list[str]
    key_types: Any
    rows: list[AnswerRow]
    epsilon: float
    delta: float
    mechanism: str
    scales: Any
    suppressed: list[list[Any]]
    merged: list[list[Any]]
    threshold: float | None
    fingerprint: str
    confidence: float
    notes: list[str]


class QueryOut(BaseModel):
    dataset: str
    version: int
    epsilon_spent: float = Field(description="0 when the answer repeats an earlier one.")
    epsilon_left: float | None
    repeated: bool
    answer: AnswerOut
    receipt: dict[str, Any] = Field(description="Signed receipt; verify offline.")


@router.post(
    "",
    summary="Run a private aggregate query (consumer with a grant).",
    response_model=QueryOut,
)
async def run_query(
    actor: Consumer, body: QueryIn, runner: Annotated[QueryRunner, Depends(query_runner)]
) -> Response:
    try:
        answer = await runner.run(
            actor, body.sql, epsilon=body.epsilon, purpose=body.purpose, render=render
        )
    except QueueFull as full:
        return error_response(full, headers={"Retry-After": str(full.details["retry_after_s"])})
    return Response(answer, media_type="application/json")


def render(result: dict[str, Any]) -> bytes:
    """The response body of one answer, validated and serialized where the query ran."""
    return QueryOut.model_validate(result).model_dump_json().encode()
