"""Offline verification of a long export, spread over worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from entrepot.errors import ProofInvalid
from entrepot.transparency import canonical_json, sign_head, verify_export
from entrepot.transparency.merkle import leaf_hash, root_of

COUNT = 40_000  # more than two chunks of work


def _export(target: Path, key: SigningKey, entries: list[bytes]) -> None:
    target.mkdir()
    (target / "entries.jsonl").write_bytes(b"".join(e + b"\n" for e in entries))
    leaves = [leaf_hash(e) for e in entries]
    heads = [sign_head(size, root_of(leaves[:size]), key) for size in (1, 20_000, COUNT)]
    (target / "heads.jsonl").write_bytes(b"".join(h.to_bytes() + b"\n" for h in heads))


def test_a_long_export_verifies_in_parallel_and_names_a_bad_entry(tmp_path: Path) -> None:
    key = SigningKey(bytes(range(32)))
    entries = [canonical_json({"kind": "peer", "n": i}) for i in range(COUNT)]
    _export(tmp_path / "good", key, entries)
    report = verify_export(tmp_path / "good", key.verify_key, workers=2)
    assert (report.entries, report.heads, report.unsigned) == (COUNT, 3, 0)
    assert report == verify_export(tmp_path / "good", key.verify_key, workers=1)
    entries[30_123] = b'{"kind": "peer","n":30123}'
    _export(tmp_path / "bad", key, entries)
    with pytest.raises(ProofInvalid, match="log entry 30123 is not in canonical JSON form"):
        verify_export(tmp_path / "bad", key.verify_key, workers=2)
