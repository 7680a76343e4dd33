"""Migration 0009 gives every existing dataset cap its δ cap, less what its ledger spent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, LargeBinary, column, insert, select, table
from sqlalchemy.types import TypeEngine

from entrepot.db import Database
from schema_steps import migrate

NOW = datetime(2026, 11, 15, 9, 0)
_DATES = ("created_at", "updated_at", "opened_at", "valid_from", "valid_until", "set_at")
_TYPES: dict[str, TypeEngine[object]] = {
    **dict.fromkeys(_DATES, DateTime()),
    **dict.fromkeys(("actions", "duties", "schema", "report", "quality"), JSON()),
    "commitment_key": LargeBinary(),
}


def _rows(db: Database, name: str, rows: list[dict[str, object]]) -> None:
    columns = [column(key, _TYPES.get(key)) for key in rows[0]]
    with db.engine.begin() as connection:
        connection.execute(insert(table(name, *columns)), rows)


def test_existing_caps_get_their_delta_cap_less_what_was_spent(empty_db: Database) -> None:
    migrate(empty_db, "0008")
    _rows(empty_db, "providers", [{"id": 1, "slug": "p", "name": "P", "created_at": NOW}])
    _rows(
        empty_db,
        "organizations",
        [{"id": 1, "slug": "c", "name": "C", "kind": "consumer", "provider_id": None,
          "created_at": NOW}],
    )  # fmt: skip
    datasets = [
        {"id": i, "provider_id": 1, "slug": f"d{i}", "title": f"D{i}", "description": "",
         "standard": "health.visit", "schema": {}, "created_at": NOW, "updated_at": NOW}
        for i in (1, 2, 3)
    ]  # fmt: skip
    _rows(empty_db, "datasets", datasets)
    version = {"title": "v", "path": "p", "sha256": "0" * 64, "size_bytes": 1,
               "rows_rejected": 0, "standard_version": "1", "report": {}, "quality": {},
               "created_at": NOW, "commitment_key": b"k" * 32}  # fmt: skip
    _rows(
        empty_db,
        "versions",
        [
            # Dataset 1: 2,000 rows then 150,000; 1/(10·N) = 6.7e-7, rounded down to 1e-7.
            {**version, "id": 1, "dataset_id": 1, "number": 1, "rows": 2_000},
            {**version, "id": 2, "dataset_id": 1, "number": 2, "rows": 150_000},
            # Dataset 2: 2,000 rows, under the 1e-6 ceiling; its Gaussian δ is 5e-7.
            {**version, "id": 3, "dataset_id": 2, "number": 1, "rows": 2_000},
            # Dataset 3: 10^9 rows, a default of 1e-10, already spent past it.
            {**version, "id": 4, "dataset_id": 3, "number": 1, "rows": 10**9},
        ],
    )
    _rows(
        empty_db,
        "policies",
        [{"id": 1, "dataset_id": 2, "document": "mechanism: gaussian\ndelta: 5.0e-07\n",
          "digest": "0" * 64, "set_by": "p", "set_at": NOW}],
    )  # fmt: skip
    grant = {"consumer_id": 1, "purpose": "x", "actions": [], "epsilon_nano": 10**9,
             "max_queries": None, "price_per_query_cents": 0, "price_per_epsilon_cents": 0,
             "currency": "EUR", "duties": [], "valid_from": NOW, "valid_until": NOW,
             "state": "granted", "created_by": "p", "created_at": NOW}  # fmt: skip
    requests = {"consumer_id": 1, "purpose": "x", "actions": [], "epsilon_nano": 10**9,
                "valid_from": NOW, "valid_until": NOW, "note": "", "state": "granted",
                "created_by": "c", "created_at": NOW}  # fmt: skip
    _rows(empty_db, "access_requests", [{**requests, "id": i, "dataset_id": i} for i in (1, 2, 3)])
    _rows(
        empty_db,
        "grants",
        [{**grant, "id": i, "request_id": i, "dataset_id": i} for i in (1, 2, 3)],
    )
    _rows(
        empty_db,
        "budgets",
        [
            {"id": i, "grant_id": i, "consumer_id": 1, "dataset_id": i,
             "epsilon_total_nano": 10**9, "epsilon_remaining_nano": 10**9, "max_queries": None,
             "queries_remaining": None, "price_per_query_cents": 0,
             "price_per_epsilon_cents": 0, "state": "open", "valid_from": NOW,
             "valid_until": NOW, "opened_at": NOW}
            for i in (1, 2, 3)
        ],
    )  # fmt: skip
    _rows(
        empty_db,
        "dataset_caps",
        [{"dataset_id": i, "cap_nano": 10**10, "remaining_nano": 10**10, "updated_by": "p",
          "updated_at": NOW} for i in (1, 2, 3)],
    )  # fmt: skip
    entry = {"consumer_id": 1, "version": 1, "action": "aggregate-query", "query_text": "q",
             "query_sha256": "0" * 64, "epsilon_nano": 0, "price_cents": 0,
             "rows_scanned": None, "actor": "c", "created_at": NOW}  # fmt: skip
    _rows(
        empty_db,
        "ledger_entries",
        [
            {**entry, "id": 1, "budget_id": 1, "dataset_id": 1, "delta": 3e-8,
             "state": "completed"},
            {**entry, "id": 2, "budget_id": 1, "dataset_id": 1, "delta": 5e-8,
             "state": "released"},
            {**entry, "id": 3, "budget_id": 2, "dataset_id": 2, "delta": 5e-7,
             "state": "touched"},
            {**entry, "id": 4, "budget_id": 3, "dataset_id": 3, "delta": 1e-10,
             "state": "reserved"},
            {**entry, "id": 5, "budget_id": 3, "dataset_id": 3, "delta": 1e-10,
             "state": "completed"},
        ],
    )  # fmt: skip
    migrate(empty_db, "0009")
    caps = table("dataset_caps", column("dataset_id"), column("delta_cap_atto"),
                 column("delta_remaining_atto"))  # fmt: skip
    with empty_db.engine.begin() as connection:
        found = connection.execute(
            select(caps.c.dataset_id, caps.c.delta_cap_atto, caps.c.delta_remaining_atto)
            .order_by(caps.c.dataset_id)
        ).all()  # fmt: skip
    assert [tuple(row) for row in found] == [
        (1, 10**11, 10**11 - 3 * 10**10),
        (2, 10**12, 10**12 - 5 * 10**11),
        (3, 2 * 10**8, 0),
    ]
