"""The one budget record: naming its references changes nothing else, on the wire too."""

from __future__ import annotations

import json
from dataclasses import astuple, fields
from datetime import date

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from entrepot.privacy.ledger import BudgetRecord, Cap
from entrepot.schemas.budgets import BudgetOut, CapOut

WIRE_FIELDS = [
    "dataset",
    "consumer",
    "grant",
    "state",
    "epsilon_granted",
    "epsilon_spent",
    "epsilon_left",
    "delta_spent",
    "max_queries",
    "queries_used",
    "valid_from",
    "valid_until",
    "cap",
]
_REFERENCES = {"dataset", "consumer", "grant", "cap"}
# Built once: building an adapter takes longer than an example may.
BUDGET_OUT, CAP_OUT = TypeAdapter(BudgetOut), TypeAdapter(CapOut)

ids = st.integers(min_value=1, max_value=2**31)
epsilons = st.floats(min_value=0, max_value=1e6, allow_nan=False)
deltas = st.floats(min_value=0, max_value=1, allow_nan=False)
caps = st.builds(
    Cap,
    dataset=ids,
    epsilon_cap=epsilons,
    epsilon_spent=epsilons,
    epsilon_left=epsilons,
    delta_cap=deltas,
    delta_spent=deltas,
    delta_left=deltas,
)
records = st.builds(
    BudgetRecord,
    dataset=ids,
    consumer=ids,
    grant=ids,
    state=st.sampled_from(["open", "revoked", "expired"]),
    epsilon_granted=epsilons,
    epsilon_spent=epsilons,
    epsilon_left=epsilons,
    delta_spent=st.floats(min_value=0, max_value=1, allow_nan=False),
    max_queries=st.none() | st.integers(min_value=0, max_value=10**6),
    queries_used=st.integers(min_value=0, max_value=10**6),
    valid_from=st.dates(min_value=date(2000, 1, 1)),
    valid_until=st.dates(min_value=date(2000, 1, 1)),
    cap=st.none() | caps,
)


@given(records)
def test_naming_replaces_the_references_only(record: BudgetRecord[int]) -> None:
    named = record.named(f"p/d{record.dataset}", f"c{record.consumer}", f"GRANT-{record.grant}")
    kept = [f.name for f in fields(BudgetRecord) if f.name not in _REFERENCES]
    assert [getattr(named, n) for n in kept] == [getattr(record, n) for n in kept]
    assert (named.dataset, named.grant) == (f"p/d{record.dataset}", f"GRANT-{record.grant}")
    if record.cap is None:
        assert named.cap is None
    else:
        assert named.cap is not None
        assert named.cap.dataset == named.dataset
        assert astuple(named.cap)[1:] == astuple(record.cap)[1:]


@given(records)
def test_the_wire_shows_every_field_in_order(record: BudgetRecord[int]) -> None:
    named = record.named(f"p/d{record.dataset}", f"c{record.consumer}", f"GRANT-{record.grant}")
    body = named.to_body()
    assert list(body) == WIRE_FIELDS
    assert (body["valid_from"], body["valid_until"]) == (
        named.valid_from.isoformat(),
        named.valid_until.isoformat(),
    )
    if named.cap is not None:
        assert body["cap"] == named.cap.to_body()
        assert list(body["cap"]) == [
            "dataset",
            "epsilon_cap",
            "epsilon_spent",
            "epsilon_left",
            "delta_cap",
            "delta_spent",
            "delta_left",
        ]


@given(records)
def test_a_budget_s_body_is_pydantic_s_dump_of_the_wire_shape(record: BudgetRecord[int]) -> None:
    named = record.named(f"p/d{record.dataset}", f"c{record.consumer}", f"GRANT-{record.grant}")
    body = named.to_body()
    dumped = BUDGET_OUT.dump_python(named, mode="json")
    assert json.dumps(body) == json.dumps(dumped)
    if named.cap is not None:
        cap = CAP_OUT.dump_python(named.cap, mode="json")
        assert json.dumps(named.cap.to_body()) == json.dumps(cap)
