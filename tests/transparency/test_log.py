"""Signed heads, their cadence, proofs to heads, and detection of a rewritten log."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from transparency_helpers import Clock, grant

from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.transparency import (
    TransparencyLog,
    TreeHead,
    make_entry,
    verify_export,
    verify_head,
)
from entrepot.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion

Factory = Callable[..., TransparencyLog]


def test_a_head_is_signed_every_n_entries(open_log: Factory) -> None:
    log = open_log(every=3)
    for i in range(10):
        log.append(grant(i))
    assert [h.size for h in log.heads()] == [1, 4, 7, 10]
    log.append_many([grant(i) for i in range(8)])
    assert log.heads()[-1].size == 18


def test_a_head_is_signed_after_t_seconds_and_on_demand(open_log: Factory, clock: Clock) -> None:
    log = open_log(every=1000, every_s=60)
    log.append(grant(0))
    log.append(grant(1))
    assert [h.size for h in log.heads()] == [1]
    clock.advance(61)
    log.append(grant(2))
    assert [h.size for h in log.heads()] == [1, 3]
    head = log.sign_head()
    assert head.size == 3
    assert log.latest_head() == head


def test_heads_verify_with_the_public_key_only(open_log: Factory, key: SigningKey) -> None:
    log = open_log(every=2)
    log.append_many([grant(i) for i in range(5)])
    head = log.latest_head()
    assert head is not None
    verify_head(TreeHead.from_bytes(head.to_bytes()), key.verify_key)
    with pytest.raises(ProofInvalid, match="key"):
        verify_head(head, SigningKey.generate().verify_key)
    forged = TreeHead(head.size + 1, head.root, head.time, head.key, head.signature)
    with pytest.raises(ProofInvalid, match="signature"):
        verify_head(forged, key.verify_key)


def test_a_log_given_a_function_for_its_key_calls_it_only_to_sign(
    open_log: Factory, key: SigningKey, tmp_path: Path
) -> None:
    open_log(every=2).append_many([grant(i) for i in range(3)])
    calls: list[int] = []

    def make_key() -> SigningKey:
        calls.append(1)
        return key

    log = TransparencyLog(tmp_path / "log", make_key)
    try:
        assert [index for index, _ in log.search()] == [0, 1, 2]
        assert log.prove(1).head == log.latest_head()
        assert calls == []
        head = log.sign_head()
        log.sign_head()
        assert calls == [1]
        verify_head(head, key.verify_key)
    finally:
        log.close()


def test_proofs_verify_against_signed_heads(open_log: Factory) -> None:
    log = open_log(every=5)
    log.append_many([grant(i) for i in range(23)])
    proof = log.prove(11)
    assert proof.head is not None
    assert proof.head.size == 23
    verify_inclusion(leaf_hash(proof.entry), 11, proof.size, proof.path, proof.head.root)
    at_size = log.prove(3, size=7)
    verify_inclusion(leaf_hash(at_size.entry), 3, 7, at_size.path, log.root(7))
    change = log.consistency(5, 23)
    verify_consistency(5, 23, change.path, change.root1, change.root2)
    with pytest.raises(InvalidInput):
        log.prove(23)
    with pytest.raises(InvalidInput):
        log.consistency(5, 24)


def test_a_rewritten_log_fails_consistency_with_an_earlier_head(
    tmp_path: Path, key: SigningKey, open_log: Factory
) -> None:
    honest = open_log()
    honest.append_many([grant(i) for i in range(6)])
    earlier = honest.sign_head()
    honest.append_many([grant(i) for i in range(6, 9)])
    assert honest.verify_from(earlier).size2 == 9
    rewritten = TransparencyLog(tmp_path / "other", key)
    rewritten.append_many([grant(i) for i in (0, 1, 2, 99, 4, 5, 6, 7, 8)])
    with pytest.raises(ProofInvalid, match="consistency proof"):
        rewritten.verify_from(earlier)
    shorter = TransparencyLog(tmp_path / "short", key)
    shorter.append_many([grant(i) for i in range(3)])
    with pytest.raises(ProofInvalid, match="entries were removed"):
        shorter.verify_from(earlier)
    for log in (rewritten, shorter):
        log.close()


def test_search_filters_by_dataset_kind_and_time(open_log: Factory) -> None:
    log = open_log()
    noon, later = (datetime(2026, 1, 31, hour, tzinfo=UTC) for hour in (12, 13))
    log.append(make_entry("grant", "admin", dataset="a/one", action="granted", time=noon))
    log.append(make_entry("query", "acme", dataset="a/two", epsilon=0.5, time=later))
    both = [{"dataset": "a/one"}, {"dataset": "b/x"}]
    log.append(make_entry("join", "acme", datasets=both, time=later))
    assert [i for i, _ in log.search(dataset="a/one")] == [0, 2]
    assert [i for i, _ in log.search(kind="query")] == [1]
    assert [i for i, _ in log.search(limit=1)] == [2]
    assert [i for i, _ in log.search(since=later)] == [1, 2]
    assert [i for i, _ in log.search(since=later.replace(tzinfo=None))] == [1, 2]
    with pytest.raises(InvalidInput, match="unknown"):
        log.search(kind="gossip")


def test_check_finds_an_entry_altered_on_disk(open_log: Factory) -> None:
    log = open_log(every=2)
    log.append_many([grant(i) for i in range(4)])
    assert log.check().entries == 4
    log.close()
    entries = log.path / "entries.bin"
    data = entries.read_bytes()
    # Same length and a valid checksum: only the Merkle tree can tell.
    altered = data.replace(b'"c2"', b'"c7"')
    out = bytearray()
    position = 0
    while position < len(altered):
        (length,) = struct.unpack_from(">I", altered, position)
        body = altered[position + 8 : position + 8 + length]
        out += struct.pack(">II", length, zlib.crc32(body)) + body
        position += 8 + length
    entries.write_bytes(bytes(out))
    (log.path / "tree.bin").write_bytes(b"")
    again = open_log()
    with pytest.raises(ProofInvalid, match="do not hash to the root"):
        again.check()


def test_exports_verify_offline_and_catch_edits(open_log: Factory, key: SigningKey) -> None:
    log = open_log(every=4)
    log.append_many([grant(i) for i in range(10)])
    target = log.path.parent / "copy"
    assert log.export(target)["entries"] == 10
    report = verify_export(target, key.verify_key)
    assert (report.entries, report.signed_size) == (10, 10)
    lines = (target / "entries.jsonl").read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"c1", b"c9")
    (target / "entries.jsonl").write_bytes(b"\n".join(lines))
    with pytest.raises(ProofInvalid, match="tree head of size"):
        verify_export(target, key.verify_key)
    (target / "entries.jsonl").write_bytes(b"\n".join(lines[:3]) + b"\n")
    with pytest.raises(ProofInvalid, match="entries were removed"):
        verify_export(target, key.verify_key)


def test_flipping_any_byte_of_an_exported_head_fails(open_log: Factory, key: SigningKey) -> None:
    log = open_log(every=4)
    log.append_many([grant(i) for i in range(6)])
    target = log.path.parent / "copy"
    log.export(target)
    heads = (target / "heads.jsonl").read_bytes()
    first_line = heads.index(b"\n")
    for position in range(first_line):
        altered = bytearray(heads)
        altered[position] ^= 0x01
        (target / "heads.jsonl").write_bytes(bytes(altered))
        with pytest.raises(ProofInvalid, match="tree head"):
            verify_export(target, key.verify_key)
