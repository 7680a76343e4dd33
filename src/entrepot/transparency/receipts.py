"""Signed receipts: an answer anyone can check offline with the node's public key.

A receipt is canonical JSON::

    {"format": "entrepot.receipt/1",
     "node_key": <hex>,
     "statement": {"kind", "query_sha256", "query_text"?, "epsilon", "answer_sha256",
                   "datasets": [{"dataset", "version", "content_sha256"}], "time"},
     "log": {"index", "entry": <the log entry's canonical JSON text>,
             "inclusion": [<hex>...], "head": <signed tree head>},
     "signature": <hex Ed25519 signature of everything else>}

:func:`verify_receipt` checks, in this order, naming the first part that fails:
the node key, the tree head's signature, the log entry's form, the inclusion
proof of the entry in that head, that the entry records the statement (kind, query
hash, ε, answer hash, dataset versions, time), that the query text hashes to the
query hash, and the receipt's own signature.

The coordinator appends ``fields.entry(...)`` to the log, then calls
:func:`issue_receipt` with the index it got back.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.transparency.canonical import (
    canonical_json,
    decimal_text,
    parse_canonical,
    parse_hash,
)
from entrepot.transparency.entries import Entry, Kind, make_entry, query_hash
from entrepot.transparency.heads import TreeHead, verify_head
from entrepot.transparency.log import TransparencyLog
from entrepot.transparency.merkle import leaf_hash, verify_inclusion

__all__ = [
    "RECEIPT_FORMAT",
    "DatasetVersion",
    "Receipt",
    "ReceiptFields",
    "issue_receipt",
    "verify_receipt",
]

RECEIPT_FORMAT = "entrepot.receipt/1"
_KINDS = (Kind.QUERY, Kind.JOIN, Kind.RELEASE)
# Statement fields the log entry must record with the very same value.
_BOUND = ("kind", "query_sha256", "epsilon", "answer_sha256", "datasets", "time")
_TOP = {"format", "node_key", "statement", "log", "signature"}
_LOG = {"index", "entry", "inclusion", "head"}
_STATEMENT = set(_BOUND) | {"query_text"}
_HEX32 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DatasetVersion:
    dataset: str
    version: str
    content_sha256: str

    def to_json(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "content_sha256": self.content_sha256,
        }


@dataclass(frozen=True)
class ReceiptFields:
    """What an answer was: built by the coordinator, logged, then signed into a receipt."""

    kind: Kind
    query_sha256: str
    epsilon: str
    answer_sha256: str
    datasets: tuple[DatasetVersion, ...]
    query_text: str | None = None

    @classmethod
    def build(
        cls,
        kind: Kind | str,
        *,
        answer: bytes,
        epsilon: float | int | str | Decimal,
        datasets: Sequence[DatasetVersion],
        query_text: str | None = None,
        query_sha256: str | None = None,
    ) -> ReceiptFields:
        """Fields of an answer; pass ``query_text`` to publish it, else only ``query_sha256``."""
        if kind not in _KINDS:
            raise InvalidInput(
                f"receipts are issued for answers, not {kind!r} events",
                hint=f"use one of: {', '.join(_KINDS)}",
            )
        if query_text is not None:
            query_sha256 = query_hash(query_text)
        if query_sha256 is None:
            raise InvalidInput(
                "a receipt needs the query's text or its hash",
                hint="pass query_text=... or query_sha256=query_hash(text)",
            )
        if not _HEX32.fullmatch(query_sha256):
            raise InvalidInput(
                f"query_sha256 {query_sha256!r} is not a SHA-256 in lowercase hex",
                hint="compute it with entrepot.transparency.query_hash(text)",
            )
        return cls(
            kind=Kind(kind),
            query_sha256=query_sha256,
            epsilon=decimal_text(epsilon),
            answer_sha256=hashlib.sha256(answer).hexdigest(),
            datasets=tuple(datasets),
            query_text=query_text,
        )

    def entry(
        self, actor: str, *, purpose: str | None = None, time: datetime | None = None, **more: Any
    ) -> Entry:
        """The log entry for this answer (outcome "accepted" unless given); it records
        every field a receipt binds to."""
        more.setdefault("outcome", "accepted")
        return make_entry(
            self.kind,
            actor,
            dataset=self.datasets[0].dataset if len(self.datasets) == 1 else None,
            purpose=purpose,
            epsilon=self.epsilon,
            time=time,
            query_sha256=self.query_sha256,
            answer_sha256=self.answer_sha256,
            datasets=[d.to_json() for d in self.datasets],
            **more,
        )


@dataclass(frozen=True)
class Receipt:
    node_key: bytes
    statement: dict[str, Any]
    index: int
    entry: bytes
    inclusion: list[bytes]
    head: TreeHead
    signature: bytes

    def body(self) -> dict[str, Any]:
        return {
            "format": RECEIPT_FORMAT,
            "node_key": self.node_key.hex(),
            "statement": self.statement,
            "log": {
                "index": self.index,
                "entry": self.entry.decode("utf-8"),
                "inclusion": [node.hex() for node in self.inclusion],
                "head": self.head.to_json(),
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature.hex()}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json(), where="receipt")


def issue_receipt(log: TransparencyLog, index: int, fields: ReceiptFields) -> Receipt:
    """Sign a receipt for the answer logged as entry ``index`` (a fresh head if needed)."""
    entry_bytes = log.entry_bytes(index)
    entry = json.loads(entry_bytes)
    statement = _statement(fields, entry.get("time"))
    for name in _BOUND:
        if entry.get(name) != statement[name]:
            raise InvalidInput(
                f"log entry {index} does not record this answer's {name}",
                hint="append fields.entry(actor, ...) and pass the index it returns",
            )
    head = log.head_covering(index)
    path = log.prove(index, head.size).path
    unsigned = Receipt(bytes(log.verify_key), statement, index, entry_bytes, path, head, b"")
    signature = log.signing_key.sign(canonical_json(unsigned.body())).signature
    return Receipt(unsigned.node_key, statement, index, entry_bytes, path, head, signature)


def _statement(fields: ReceiptFields, time: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "kind": str(fields.kind),
        "query_sha256": fields.query_sha256,
        "epsilon": fields.epsilon,
        "answer_sha256": fields.answer_sha256,
        "datasets": [d.to_json() for d in fields.datasets],
        "time": time,
    }
    if fields.query_text is not None:
        statement["query_text"] = fields.query_text
    return statement


def verify_receipt(receipt: bytes | str | Mapping[str, Any], key: VerifyKey) -> Receipt:
    """Check a receipt offline; ProofInvalid names the first part that fails."""
    body = _load(receipt)
    _shape(body, _TOP, "receipt")
    if body["format"] != RECEIPT_FORMAT:
        raise _invalid("receipt", f"has format {body['format']!r}, not {RECEIPT_FORMAT!r}")
    node_key = parse_hash(body["node_key"], what="receipt node key")
    if node_key != bytes(key):
        raise ProofInvalid(
            "the receipt was issued by another node key than the one given",
            hint="check that you hold the right node's public key",
            part="node key",
        )
    log_part, statement = body["log"], body["statement"]
    _shape(log_part, _LOG, "receipt log part")
    if not isinstance(statement, dict) or not set(_BOUND) <= set(statement) <= _STATEMENT:
        raise _invalid("receipt statement", f"must have the keys {', '.join(sorted(_BOUND))}")
    head = TreeHead.from_json(log_part["head"])
    verify_head(head, key)
    if not isinstance(log_part["entry"], str):
        raise _invalid("log entry", "is not a JSON text")
    entry_bytes = log_part["entry"].encode("utf-8", errors="surrogatepass")
    entry = parse_canonical(entry_bytes, what="log entry")
    index = log_part["index"]
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or not isinstance(log_part["inclusion"], list)
    ):
        raise _invalid("inclusion proof", "needs an integer index and a list of hashes")
    path = [
        parse_hash(node, what=f"inclusion proof[{position}]")
        for position, node in enumerate(log_part["inclusion"])
    ]
    verify_inclusion(leaf_hash(entry_bytes), index, head.size, path, head.root)
    for name in _BOUND:
        if not isinstance(entry, dict) or entry.get(name) != statement[name]:
            raise _invalid("log entry", f"records another {name} than the receipt states")
    text = statement.get("query_text")
    if text is not None and (
        not isinstance(text, str) or query_hash(text) != statement["query_sha256"]
    ):
        raise _invalid("query text", "does not hash to the receipt's query_sha256")
    signature = body["signature"]
    unsigned = {name: value for name, value in body.items() if name != "signature"}
    try:
        if not isinstance(signature, str) or len(signature) != 128:
            raise ValueError(signature)
        key.verify(canonical_json(unsigned, where="receipt"), bytes.fromhex(signature))
    except (ValueError, InvalidInput, BadSignatureError) as error:
        raise _invalid("receipt signature", "does not verify") from error
    return Receipt(node_key, statement, index, entry_bytes, path, head, bytes.fromhex(signature))


def _load(receipt: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(receipt, Mapping):
        return dict(receipt)
    try:
        text = receipt.decode("utf-8") if isinstance(receipt, bytes) else receipt
        return json.loads(text, parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError) as error:
        raise _invalid("receipt", f"is not valid JSON ({error})") from error


def _no_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")


def _shape(value: Any, keys: set[str], what: str) -> None:
    if not isinstance(value, dict) or set(value) != keys:
        raise _invalid(what, f"must have exactly the keys {', '.join(sorted(keys))}")


def _invalid(part: str, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"{part} {why}",
        hint="the receipt was altered, truncated or belongs to another node; "
        "ask the issuer for the original",
        part=part,
    )
