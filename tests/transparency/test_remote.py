"""Checking a log someone else serves: every claim is rechecked here with the node's key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from transparency_helpers import Clock, grant

from entrepot.errors import NotFound, ProofInvalid
from entrepot.transparency import (
    DatasetVersion,
    QueryOpening,
    ReceiptFields,
    TransparencyLog,
    issue_receipt,
    verify_export,
)
from entrepot.transparency.remote import (
    export_source,
    latest_head,
    source_extends,
    source_heads,
    source_key,
    verify_served_receipt,
    verify_source,
)

Factory = Callable[..., TransparencyLog]


class Served:
    """What a node serves about ``log``: its own bytes, as the HTTP routes send them."""

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log

    def audit_head(self) -> dict[str, Any]:
        head = self.log.latest_head()
        assert head is not None
        return head.to_json()

    def audit_consistency(self, size1: int, size2: int) -> dict[str, Any]:
        return self.log.consistency(size1, size2).to_json()

    def audit_export_heads(self) -> Iterator[bytes]:
        return iter(self.log.store.head_lines())

    def audit_export_entries(self) -> Iterator[bytes]:
        return self.log.store.entries(0, self.log.store.size)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=st.integers(0, 20), more=st.integers(0, 20))
def test_a_log_that_only_grew_extends_every_earlier_head(
    tmp_path_factory: pytest.TempPathFactory, first: int, more: int
) -> None:
    key = SigningKey(bytes(range(32)))
    log = TransparencyLog(tmp_path_factory.mktemp("log"), key, clock=Clock())
    try:
        log.append_many([grant(i) for i in range(first)])
        earlier = log.sign_head()
        log.append_many([grant(i) for i in range(first, first + more)])
        log.sign_head()
        proof = source_extends(Served(log), earlier, key.verify_key)
        assert (proof["size1"], proof["size2"]) == (first, first + more)
    finally:
        log.close()


def test_a_rewritten_or_shorter_log_is_caught_here(
    tmp_path: Path, key: SigningKey, open_log: Factory
) -> None:
    honest = open_log()
    honest.append_many([grant(i) for i in range(6)])
    earlier = honest.sign_head()
    rewritten = TransparencyLog(tmp_path / "other", key, clock=Clock())
    rewritten.append_many([grant(i) for i in (0, 1, 2, 99, 4, 5, 6, 7)])
    rewritten.sign_head()
    with pytest.raises(ProofInvalid):
        source_extends(Served(rewritten), earlier, key.verify_key)
    shorter = TransparencyLog(tmp_path / "short", key, clock=Clock())
    shorter.append_many([grant(i) for i in range(3)])
    shorter.sign_head()
    with pytest.raises(ProofInvalid, match="entries were removed"):
        source_extends(Served(shorter), earlier, key.verify_key)
    stranger = SigningKey(bytes(32))
    with pytest.raises(ProofInvalid):
        source_extends(Served(honest), earlier, stranger.verify_key)
    for log in (rewritten, shorter):
        log.close()


def test_a_served_log_rehashes_and_copies_into_an_export_that_verifies_offline(
    tmp_path: Path, key: SigningKey, open_log: Factory
) -> None:
    log = open_log(every=4)
    log.append_many([grant(i) for i in range(10)])
    served = Served(log)
    heads = source_heads(served)
    assert source_key(heads[0]).encode() == key.verify_key.encode()
    report = verify_source(served, heads, key.verify_key)
    assert report.entries == 10
    assert latest_head(served).size == heads[-1].size
    copied = export_source(served, tmp_path / "copy")
    assert copied == {"directory": str(tmp_path / "copy"), "entries": 10, "heads": len(heads)}
    assert verify_export(tmp_path / "copy", key.verify_key).root == report.root
    assert (tmp_path / "copy" / "node.pub").read_text() == key.verify_key.encode().hex() + "\n"


def test_no_head_to_take_a_key_from_is_not_found() -> None:
    with pytest.raises(NotFound, match="no signed head") as missing:
        source_key(None)
    assert "--node-key" in (missing.value.hint or "")


def test_a_receipt_checks_against_the_log_that_still_holds_its_entry(
    tmp_path: Path, key: SigningKey, open_log: Factory
) -> None:
    log = open_log()
    version = DatasetVersion("riverside-hospitals/outpatient-visits", "2026-01", "ab" * 32)
    fields = ReceiptFields.build(
        "query", opening=QueryOpening.fresh("SELECT 1"), answer=b"{}", epsilon=0.1,
        datasets=[version],
    )  # fmt: skip
    receipt = issue_receipt(log, log.append(fields.entry("acme")), fields).to_bytes()
    log.append_many([grant(i) for i in range(5)])
    log.sign_head()
    checked, extends = verify_served_receipt(receipt, Served(log))
    assert (extends["size1"], extends["size2"]) == (checked.head.size, 6)
    forked = TransparencyLog(tmp_path / "forked", key, clock=Clock())
    forked.append_many([grant(i) for i in range(6)])
    forked.sign_head()
    with pytest.raises(ProofInvalid):
        verify_served_receipt(receipt, Served(forked), key.verify_key)
    forked.close()
