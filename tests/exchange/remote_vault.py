"""A vault reached over HTTP: the protocol served by the node that holds the data.

:func:`vault_app` is the holder's side: it describes its datasets and runs an
operation in its own engine, on its own files, after checking and pricing the query
again against its own policy. :class:`RemoteVault` is the caller's side: it sends
the operation as plain values and gets back only the released answer.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, BinaryIO

import httpx
from fastapi import FastAPI, Response
from pydantic import BaseModel

from entrepot.api.errors import install
from entrepot.errors import Conflict, Forbidden, from_body
from entrepot.exchange.node import Node
from entrepot.exchange.policies import Policies
from entrepot.privacy import Answer, plan
from entrepot.standards import codelist
from entrepot.standards.schema import Standard, parse_standard
from entrepot.vault import (
    Aggregate,
    Aggregated,
    DatasetRef,
    LocalVault,
    Operation,
    Outcome,
    Progress,
    Published,
    PublishRequest,
    Touched,
    VersionInfo,
)

__all__ = ["RemoteVault", "vault_app"]


class AggregateBody(BaseModel):
    """An aggregate operation as plain values: the plan travels as its query and price."""

    kind: str
    dataset: str
    version: int
    sql: str
    epsilon: float
    fingerprint: str


def vault_app(node: Node) -> FastAPI:
    """The routes a holder serves so that a coordinator elsewhere can use its vault."""
    app = FastAPI()
    install(app)
    vault = LocalVault.of(node)

    @app.get("/vault/{provider}/{dataset}/versions")
    def versions(provider: str, dataset: str) -> list[dict[str, Any]]:
        return [v.to_dict() for v in vault.versions(DatasetRef(provider, dataset))]

    @app.get("/vault/{provider}/{dataset}/standard")
    def standard(provider: str, dataset: str) -> dict[str, Any]:
        found = vault.standard(DatasetRef(provider, dataset))
        return {"name": found.name, "document": found.document}

    @app.post("/vault/run")
    def run(body: AggregateBody) -> dict[str, Any]:
        ref = DatasetRef.parse(body.dataset)
        [chosen] = [v for v in vault.versions(ref) if v.number == body.version]
        # The holder checks and prices the query itself: a plan is never taken on trust.
        checked = plan(
            body.sql,
            standard=vault.standard(ref),
            policy=Policies(node).get(ref).policy,
            dataset=ref.sql_name,
            epsilon=body.epsilon,
            codes=lambda name: codelist(name).codes,
            version=chosen.sha256,
        )
        if checked.fingerprint != body.fingerprint:
            raise Conflict(
                "the holder prices this query differently",
                hint="plan the query against the holder's current policy and version",
            )
        done = vault.run(Aggregate(ref, body.version, checked), touched=lambda: None)
        assert isinstance(done, Aggregated)
        return {"answer": done.answer.to_json().decode(), "rows": done.rows}

    @app.get("/vault/releases/{name}")
    def release_file(name: str) -> Response:
        with vault.release_file(name) as handle:
            return Response(handle.read(), media_type="application/octet-stream")

    return app


def _version(raw: dict[str, Any]) -> VersionInfo:
    return VersionInfo(
        ref=DatasetRef.parse(raw["dataset"]),
        number=raw["version"],
        title=raw["title"],
        sha256=raw["sha256"],
        size_bytes=raw["size_bytes"],
        rows=raw["rows"],
        rows_rejected=raw["rows_rejected"],
        standard=raw["standard"],
        standard_version=raw["standard_version"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        quality=raw["quality"],
    )


class RemoteVault:
    """A :class:`~entrepot.vault.Vault` on another node, spoken to over HTTP."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _get(self, path: str) -> Any:
        response = self.client.get(path)
        if response.is_error:
            raise from_body(response.json()["error"])
        return response.json()

    def publish(
        self, request: PublishRequest, data: BinaryIO, *, progress: Progress | None = None
    ) -> Published:
        raise Forbidden(
            "a remote vault publishes on its own node",
            hint="publish with `entrepot dataset publish` on the holder's node",
        )

    def versions(self, ref: DatasetRef | str) -> list[VersionInfo]:
        ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
        return [_version(v) for v in self._get(f"/vault/{ref.provider}/{ref.dataset}/versions")]

    def standard(self, ref: DatasetRef | str) -> Standard:
        ref = DatasetRef.parse(ref) if isinstance(ref, str) else ref
        raw = self._get(f"/vault/{ref.provider}/{ref.dataset}/standard")
        return parse_standard(raw["document"], raw["name"])

    def run(self, operation: Operation, *, touched: Touched) -> Outcome:
        body = AggregateBody(
            kind=operation.kind,
            dataset=str(operation.ref),
            version=operation.version,
            sql=operation.plan.query.normalized,
            epsilon=operation.plan.epsilon,
            fingerprint=operation.plan.fingerprint,
        )
        # Once the request is sent the holder may read the data: no refund after this.
        touched()
        response = self.client.post("/vault/run", json=body.model_dump())
        if response.is_error:
            raise from_body(response.json()["error"])
        raw = response.json()
        return Aggregated(Answer.from_json(raw["answer"].encode()), raw["rows"])

    def release_file(self, name: str) -> BinaryIO:
        response = self.client.get(f"/vault/releases/{name}")
        if response.is_error:
            raise from_body(response.json()["error"])
        return io.BytesIO(response.content)
