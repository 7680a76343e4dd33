"""Receipts: issued for logged answers, verified offline, and any altered byte is caught."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from nacl.signing import SigningKey

from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.transparency import (
    DatasetVersion,
    QueryOpening,
    Receipt,
    ReceiptFields,
    TransparencyLog,
    issue_receipt,
    verify_receipt,
)

Factory = Callable[..., TransparencyLog]
SQL = "SELECT region, COUNT(*) FROM visits GROUP BY region"


def _fields(answer: bytes = b'{"north": 120}', text: str = SQL) -> ReceiptFields:
    version = DatasetVersion("riverside-hospitals/outpatient-visits", "2026-01", "ab" * 32)
    return ReceiptFields.build(
        "query", opening=QueryOpening.fresh(text), answer=answer, epsilon=0.1, datasets=[version]
    )


def _receipt(log: TransparencyLog) -> Receipt:
    log.append_many([_fields(str(i).encode()).entry("other") for i in range(4)])
    fields = _fields()
    index = log.append(fields.entry("acme-insights", purpose="capacity planning"))
    return issue_receipt(log, index, fields)


def test_a_receipt_verifies_with_the_node_key_only(open_log: Factory, key: SigningKey) -> None:
    receipt = _receipt(open_log(every=1000))
    assert receipt.head.size == 5
    checked = verify_receipt(receipt.to_bytes(), key.verify_key)
    assert checked.statement["epsilon"] == "0.1"
    assert checked.opening is not None
    assert checked.opening.text == SQL
    assert "query_text" not in checked.statement
    assert checked.index == 4
    pretty = json.dumps(receipt.to_json(), indent=2)
    verify_receipt(pretty, key.verify_key)


def test_flipping_any_byte_of_a_receipt_fails(open_log: Factory, key: SigningKey) -> None:
    data = _receipt(open_log()).to_bytes()
    for position in range(len(data)):
        altered = bytearray(data)
        altered[position] ^= 0x01
        with pytest.raises(ProofInvalid):
            verify_receipt(bytes(altered), key.verify_key)


def _tampered(receipt: Receipt, edit: Callable[[dict[str, Any]], None]) -> str:
    body = receipt.to_json()
    edit(body)
    return json.dumps(body)


def _flip_hex(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


@pytest.mark.parametrize(
    ("edit", "part"),
    [
        (lambda b: b["log"].update(entry=b["log"]["entry"].replace("acme", "acmf")), "inclusion"),
        (
            lambda b: b["log"]["inclusion"].__setitem__(0, _flip_hex(b["log"]["inclusion"][0])),
            "inclusion",
        ),
        (lambda b: b["log"].update(index=b["log"]["index"] + 1), "inclusion"),
        (lambda b: b["log"]["head"].update(root=_flip_hex(b["log"]["head"]["root"])), "tree head"),
        (lambda b: b["log"]["head"].update(size=b["log"]["head"]["size"] + 1), "tree head"),
        (
            lambda b: b["log"]["head"].update(signature=_flip_hex(b["log"]["head"]["signature"])),
            "tree head signature",
        ),
        (lambda b: b["statement"].update(epsilon="0.01"), "log entry"),
        (lambda b: b["statement"].update(answer_commitment="00" * 32), "log entry"),
        (lambda b: b["statement"].update(query_commitment="00" * 32), "log entry"),
        (lambda b: b["opening"].update(query_text=SQL + " "), "opening"),
        (lambda b: b["opening"].update(nonce=_flip_hex(b["opening"]["nonce"])), "opening"),
        (lambda b: b["opening"].pop("query_commitment"), "opening must have exactly"),
        (lambda b: b.update(opening="SELECT 1"), "opening"),
        (lambda b: b.update(signature=_flip_hex(b["signature"])), "receipt signature"),
        (lambda b: b.update(node_key="00" * 32), "node key"),
        (lambda b: b["log"].pop("head"), "receipt log part"),
    ],
)
def test_tampering_names_what_failed(
    open_log: Factory,
    key: SigningKey,
    edit: Callable[[dict[str, Any]], None],
    part: str,
) -> None:
    receipt = _receipt(open_log(every=2))
    with pytest.raises(ProofInvalid, match=part):
        verify_receipt(_tampered(receipt, edit), key.verify_key)


def test_another_nodes_key_is_refused(open_log: Factory) -> None:
    receipt = _receipt(open_log())
    with pytest.raises(ProofInvalid, match="another node key"):
        verify_receipt(receipt.to_bytes(), SigningKey.generate().verify_key)


def test_a_receipt_needs_an_entry_recording_the_answer(open_log: Factory) -> None:
    log = open_log()
    index = log.append(_fields(b"other answer").entry("acme-insights"))
    with pytest.raises(InvalidInput, match="does not record this answer"):
        issue_receipt(log, index, _fields())


def test_without_its_opening_a_receipt_still_verifies_and_reveals_no_query(
    open_log: Factory, key: SigningKey
) -> None:
    log = open_log()
    fields = ReceiptFields.build(
        "join",
        opening=QueryOpening.fresh("JOIN a/x WITH b/y ON person"),
        answer=b"7",
        epsilon="0.5",
        datasets=[DatasetVersion("a/x", "1", "cd" * 32), DatasetVersion("b/y", "3", "ef" * 32)],
    )
    receipt = issue_receipt(log, log.append(fields.entry("acme")), fields).to_json()
    del receipt["opening"]
    checked = verify_receipt(json.dumps(receipt), key.verify_key)
    assert checked.opening is None
    assert "JOIN" not in json.dumps(checked.to_json())


def test_receipt_fields_refuse_other_kinds() -> None:
    version = [DatasetVersion("a/x", "1", "cd" * 32)]
    opening = QueryOpening.fresh(SQL)
    for kind in ("gossip", "grant"):
        with pytest.raises(InvalidInput, match="answers"):
            ReceiptFields.build(kind, opening=opening, answer=b"", epsilon=0, datasets=version)
