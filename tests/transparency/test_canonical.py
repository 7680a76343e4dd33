from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.transparency import Entry, Kind, QueryOpening, make_entry
from entrepot.transparency.canonical import (
    canonical_json,
    decimal_text,
    parse_canonical,
    parse_timestamp,
    timestamp,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


def test_canonical_form_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [True, None], "é": "ü"}) == (
        '{"a":[true,null],"b":1,"é":"ü"}'.encode()
    )


@given(json_values)
def test_canonical_bytes_parse_back_to_themselves(value: Any) -> None:
    data = canonical_json(value)
    assert canonical_json(parse_canonical(data, what="value")) == data


@pytest.mark.parametrize(
    "value", [0.1, math.nan, math.inf, {"x": 1.5}, {1: "a"}, 2**60, "\ud800", b"x"]
)
def test_values_without_one_exact_encoding_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput):
        canonical_json(value)


@pytest.mark.parametrize("text", [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1.0}', b"[NaN]", b"\xff"])
def test_non_canonical_bytes_are_refused(text: bytes) -> None:
    with pytest.raises(ProofInvalid):
        parse_canonical(text, what="entry")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_decimal_text_reads_back_exactly(value: float) -> None:
    text = decimal_text(value)
    assert float(text) == value
    assert "e" not in text.lower()


def test_decimal_text_is_the_short_form() -> None:
    assert decimal_text(0.1) == "0.1"
    assert decimal_text(1e-7) == "0.0000001"
    assert decimal_text(2) == "2"
    assert decimal_text(Decimal("0.50")) == "0.5"
    assert decimal_text(-0.0) == "0"
    for bad in (math.nan, -math.inf, "abc", True):
        with pytest.raises(InvalidInput):
            decimal_text(bad)


def test_timestamps_have_one_form() -> None:
    text = timestamp()
    assert parse_timestamp(text, what="t").tzinfo is not None
    for bad in ("2026-01-31T12:00:00Z", "2026-01-31 12:00:00.000000Z", 5):
        with pytest.raises(ProofInvalid):
            parse_timestamp(bad, what="t")


def test_entries_hold_epsilon_as_a_decimal_string_and_never_query_text() -> None:
    sql = "SELECT COUNT(*) FROM visits"
    committed = QueryOpening.fresh(sql).commitment
    entry = make_entry(
        "query", "acme", dataset="r/v", epsilon=0.1, outcome="refused", query_commitment=committed
    )
    body = json.loads(entry.to_bytes())
    assert body["epsilon"] == "0.1"
    assert sql not in entry.to_bytes().decode()
    assert hashlib.sha256(sql.encode()).hexdigest() not in entry.to_bytes().decode()
    with pytest.raises(InvalidInput, match="unknown"):
        make_entry("gossip", "acme")
    with pytest.raises(InvalidInput, match="common key"):
        Entry(Kind.QUERY, timestamp(), "acme", fields={"time": "now"})
    with pytest.raises(InvalidInput, match="floating-point"):
        make_entry("query", "acme", ratio=0.5)
