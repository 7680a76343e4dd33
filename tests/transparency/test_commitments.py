"""Commitments hide what they commit to from a guesser, and open to one message only."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.errors import ProofInvalid
from entrepot.transparency import (
    ContentOpening,
    QueryOpening,
    content_commitment,
    new_key,
    parse_opening,
    verify_opening,
)

texts = st.text(min_size=0, max_size=200)
nonces = st.binary(min_size=32, max_size=32)


@given(texts, texts, nonces)
def test_a_query_opening_opens_its_own_text_only(text: str, other: str, nonce: bytes) -> None:
    opening = QueryOpening(text, nonce)
    entry = {"query_commitment": opening.commitment}
    assert verify_opening(json.dumps(opening.to_json()), entry) == opening.commitment
    if other != text:
        with pytest.raises(ProofInvalid, match="query opening"):
            verify_opening(QueryOpening(other, nonce), entry)


@given(texts)
def test_the_same_query_never_commits_twice_alike(text: str) -> None:
    first, second = QueryOpening.fresh(text), QueryOpening.fresh(text)
    assert first.commitment != second.commitment
    assert first.answer_commitment(b"42") != second.answer_commitment(b"42")
    # Nor can a guesser confirm the text by its plain hash.
    assert hashlib.sha256(text.encode()).hexdigest() not in (first.commitment, second.commitment)


@given(nonces)
def test_query_and_answer_commitments_under_one_nonce_are_kept_apart(nonce: bytes) -> None:
    opening = QueryOpening("42", nonce)
    assert opening.commitment != opening.answer_commitment(b"42")


def test_a_padded_key_cannot_open_a_commitment_a_second_way() -> None:
    # HMAC pads short keys with zeros: K and K‖00 compute the same MAC.
    opening = QueryOpening("SELECT 1", new_key())
    padded = {**opening.to_json(), "nonce": opening.nonce.hex() + "00"}
    with pytest.raises(ProofInvalid, match="malformed"):
        verify_opening(padded, {"query_commitment": opening.commitment})
    with pytest.raises(ProofInvalid, match="32 bytes"):
        content_commitment("ab" * 32, b"\x01" * 31)


def test_a_content_opening_checks_against_an_entry_or_a_receipts_versions() -> None:
    digest = hashlib.sha256(b"parquet bytes").hexdigest()
    opening = ContentOpening("r/visits", "2", digest, new_key())
    logged = {"kind": "dataset_version", "dataset": "r/visits", "version": 2}
    logged["content_commitment"] = opening.commitment
    statement = {
        "datasets": [
            {"dataset": "r/other", "version": "2", "content_commitment": "00" * 32},
            {"dataset": "r/visits", "version": "2", "content_commitment": opening.commitment},
        ]
    }
    assert verify_opening(opening.to_json(), logged) == opening.commitment
    assert verify_opening(opening, statement) == opening.commitment
    assert opening.commitment != digest
    with pytest.raises(ProofInvalid, match="names r/visits version 3"):
        verify_opening(ContentOpening("r/visits", "3", digest, opening.key), logged)
    with pytest.raises(ProofInvalid, match="does not open"):
        verify_opening(ContentOpening("r/visits", "2", digest, new_key()), statement)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        {"format": "entrepot.opening/9", "kind": "query"},
        {"format": "entrepot.opening/1", "kind": "gossip"},
        {"format": "entrepot.opening/1", "kind": "query", "query_text": "x"},
        {
            "format": "entrepot.opening/1",
            "kind": "query",
            "query_text": 7,
            "nonce": "00" * 32,
            "query_commitment": "00" * 32,
        },
        {
            "format": "entrepot.opening/1",
            "kind": "query",
            "query_text": "x",
            "nonce": "00" * 32,
            "query_commitment": "00" * 32,
        },
    ],
)
def test_malformed_openings_are_refused(body: bytes | dict[str, object]) -> None:
    with pytest.raises(ProofInvalid):
        parse_opening(body if isinstance(body, bytes) else json.dumps(body))
