"""Checking a log another party serves, trusting nothing it computed.

A :class:`LogSource` hands over what a node publishes about its log: its latest
signed head, consistency proofs, and the heads and entries exactly as stored. The
functions here check them with the node's public key on this side: that the log
still extends a head someone kept (:func:`source_extends`), that every entry hashes
to the signed roots (:func:`verify_source`), and they copy it into an export that
verifies offline (:func:`export_source`). The CLI, the portal and federation peers
use them alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from nacl.signing import VerifyKey

from entrepot.errors import NotFound, ProofInvalid
from entrepot.transparency.canonical import parse_hash
from entrepot.transparency.export import Progress, VerifyReport, verify_entries, write_export
from entrepot.transparency.heads import TreeHead, load_verify_key, verify_head
from entrepot.transparency.merkle import verify_consistency
from entrepot.transparency.receipts import Receipt, verify_receipt

__all__ = [
    "LogSource",
    "export_source",
    "latest_head",
    "source_extends",
    "source_heads",
    "source_key",
    "verify_source",
]


class LogSource(Protocol):
    """What a node serves about its log (the HTTP API's ``/v1/audit`` routes)."""

    def audit_head(self) -> dict[str, Any]:
        """The latest signed tree head, as JSON."""
        ...

    def audit_consistency(self, size1: int, size2: int) -> dict[str, Any]:
        """A consistency proof between two tree sizes, as JSON."""
        ...

    def audit_export_heads(self) -> Iterable[bytes]:
        """Every signed head as stored, oldest first, one per item."""
        ...

    def audit_export_entries(self) -> Iterable[bytes]:
        """Every entry as stored (canonical JSON), in log order, one per item."""
        ...


def latest_head(source: LogSource) -> TreeHead:
    """The source's latest signed head, parsed strictly (its signature not yet checked)."""
    return TreeHead.from_json(source.audit_head(), what="the server's tree head")


def source_heads(source: LogSource) -> list[TreeHead]:
    """Every head the source signed, parsed strictly (signatures not yet checked)."""
    return [
        TreeHead.from_bytes(line, what=f"tree head #{position}")
        for position, line in enumerate(source.audit_export_heads())
    ]


def source_key(fallback: TreeHead | None) -> VerifyKey:
    """The key a head names: for a user with no key of their own, printed to compare."""
    if fallback is None:
        raise NotFound(
            "the server has no signed head to take the node key from",
            hint="pass --node-key with the node's public key, or ask an auditor to sign a head",
        )
    return load_verify_key(fallback.key.hex(), where="tree head")


def source_extends(source: LogSource, earlier: TreeHead, key: VerifyKey) -> dict[str, Any]:
    """Check here that the source's latest signed head extends ``earlier``.

    Both heads must carry ``key``'s signature and the consistency proof must lead
    from one root to the other; nothing the source says is taken on trust.
    """
    verify_head(earlier, key, what="earlier tree head")
    latest = latest_head(source)
    verify_head(latest, key, what="the server's tree head")
    if latest.size < earlier.size:
        raise ProofInvalid(
            f"the server's latest head covers {latest.size} entries, fewer than the "
            f"{earlier.size} of the earlier head: entries were removed",
            hint="this log is not append-only; keep the earlier head as evidence",
            part="consistency proof",
        )
    path: list[bytes] = []
    if 0 < earlier.size < latest.size:
        path = _consistency_path(source.audit_consistency(earlier.size, latest.size))
    if earlier.size > 0:
        verify_consistency(earlier.size, latest.size, path, earlier.root, latest.root)
    return {
        "size1": earlier.size,
        "size2": latest.size,
        "root1": earlier.root.hex(),
        "root2": latest.root.hex(),
        "consistency": [node.hex() for node in path],
    }


def _consistency_path(proof: Any) -> list[bytes]:
    """The hashes of a consistency proof the source served, checked for form only."""
    nodes = proof.get("consistency") if isinstance(proof, dict) else None
    if not isinstance(nodes, list):
        raise ProofInvalid(
            "the server's consistency proof holds no list of hashes",
            hint="the server is not an entrepot node of this version, or its answer was "
            "altered on the way",
            part="consistency proof",
        )
    return [
        parse_hash(node, what=f"consistency proof[{position}]")
        for position, node in enumerate(nodes)
    ]


def verify_served_receipt(
    receipt: bytes, source: LogSource, key: VerifyKey | None = None
) -> tuple[Receipt, dict[str, Any]]:
    """Verify ``receipt`` with ``key`` (default: the key the source's latest head names),
    and that the source's log still extends the head in it: its entry is still logged."""
    if key is None:
        key = load_verify_key(latest_head(source).key.hex(), where="the server's tree head")
    verified = verify_receipt(receipt, key)
    return verified, source_extends(source, verified.head, key)


def verify_source(
    source: LogSource,
    heads: list[TreeHead],
    key: VerifyKey,
    progress: Progress | None = None,
) -> VerifyReport:
    """Rehash every entry the source streams and check ``heads`` (fetched before) against them.

    Heads first: every entry they cover is then in the stream that follows.
    """
    return verify_entries(source.audit_export_entries(), heads, key, progress)


def export_source(source: LogSource, directory: Path) -> dict[str, Any]:
    """Copy the source's log into ``directory``, in the format ``verify_export`` reads."""
    heads = list(source.audit_export_heads())
    key = None if not heads else TreeHead.from_bytes(heads[-1], what="the server's latest head").key
    return write_export(directory, source.audit_export_entries(), heads, key)
