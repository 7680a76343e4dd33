"""Signed receipts: an answer anyone can check offline with the node's public key.

A receipt is canonical JSON::

    {"format": "entrepot.receipt/2",
     "node_key": <hex>,
     "statement": {"kind", "query_commitment", "answer_commitment", "epsilon",
                   "datasets": [{"dataset", "version", "content_commitment"}], "time"},
     "log": {"index", "entry": <the log entry's canonical JSON text>,
             "inclusion": [<hex>...], "head": <signed tree head>},
     "signature": <hex Ed25519 signature of everything above>,
     "opening": <the query opening: text and nonce>}

The statement names the query, the answer and each dataset version by commitment
(:mod:`entrepot.transparency.commitments`), exactly as the public log entry does.
``opening`` is outside the signature: the commitments bind it, so the consumer may
drop it to show the receipt without revealing what it asked. So is ``witnessed``,
present when the node had its peers cosign its log::

    "witnessed": {"checkpoint": <a C2SP checkpoint note: the node's signature and its
                                 witnesses' cosignatures>,
                  "consistency": [<hex>...]}

The checkpoint's signatures and the consistency proof from the receipt's head to
it stand on their own: a verifier given witnesses' keys learns which of them saw
this log extend the receipt's head, so a node that shows another history to
someone else is caught by those witnesses.

:func:`verify_receipt` checks, in this order, naming the first part that fails:
the node key, the tree head's signature, the log entry's form, the inclusion
proof of the entry in that head, that the entry records the statement (kind,
commitments, ε, dataset versions, time), the receipt's own signature, and, when
present, that the opening opens the query commitment and that the witnessed
checkpoint is the node's, signed, extends the head, and carries only cosignatures
that verify among those of the witnesses given.

The coordinator appends ``fields.entry(...)`` to the log, then calls
:func:`issue_receipt` with the index it got back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from entrepot.transparency.commitments import QueryOpening, parse_opening, verify_opening
from entrepot.transparency.entries import Entry, Kind, make_entry
from entrepot.transparency.heads import TreeHead, verify_head
from entrepot.transparency.log import TransparencyLog
from entrepot.transparency.merkle import leaf_hash, verify_consistency, verify_inclusion
from entrepot.transparency.notes import (
    NoteVerifier,
    log_verifier,
    parse_checkpoint,
    parse_note,
    verify_note,
)

__all__ = [
    "RECEIPT_FORMAT",
    "DatasetVersion",
    "Receipt",
    "ReceiptFields",
    "issue_receipt",
    "verify_receipt",
]

RECEIPT_FORMAT = "entrepot.receipt/2"
_KINDS = (Kind.QUERY, Kind.JOIN, Kind.RELEASE)
# Statement fields the log entry must record with the very same value.
_BOUND = ("kind", "query_commitment", "answer_commitment", "epsilon", "datasets", "time")
_SIGNED = {"format", "node_key", "statement", "log", "signature"}
_LOG = {"index", "entry", "inclusion", "head"}
_UNSIGNED = {"opening", "witnessed"}


@dataclass(frozen=True)
class DatasetVersion:
    """A dataset version as receipts and the log name it: by its content commitment."""

    dataset: str
    version: str
    content_commitment: str

    def to_json(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "content_commitment": self.content_commitment,
        }


@dataclass(frozen=True)
class ReceiptFields:
    """What an answer was: built by the coordinator, logged, then signed into a receipt."""

    kind: Kind
    opening: QueryOpening
    epsilon: str
    answer_commitment: str
    datasets: tuple[DatasetVersion, ...]

    @classmethod
    def build(
        cls,
        kind: Kind | str,
        *,
        opening: QueryOpening,
        answer: bytes,
        epsilon: float | int | str | Decimal,
        datasets: Sequence[DatasetVersion],
    ) -> ReceiptFields:
        """Fields of an answer to the query ``opening`` commits to (a fresh one per answer,
        repeats included, so equal queries never share a commitment)."""
        if kind not in _KINDS:
            raise InvalidInput(
                f"receipts are issued for answers, not {kind!r} events",
                hint=f"use one of: {', '.join(_KINDS)}",
            )
        return cls(
            kind=Kind(kind),
            opening=opening,
            epsilon=decimal_text(epsilon),
            answer_commitment=opening.answer_commitment(answer),
            datasets=tuple(datasets),
        )

    @property
    def query_commitment(self) -> str:
        return self.opening.commitment

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
            query_commitment=self.query_commitment,
            answer_commitment=self.answer_commitment,
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
    opening: QueryOpening | None = None
    # The witnesses (among those the verifier gave) whose cosignatures checked, by their
    # key name, with the POSIX time of each cosignature.
    cosigners: dict[str, int] = field(default_factory=dict)

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
        signed = {**self.body(), "signature": self.signature.hex()}
        return signed if self.opening is None else {**signed, "opening": self.opening.to_json()}

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
    return Receipt(
        unsigned.node_key, statement, index, entry_bytes, path, head, signature, fields.opening
    )


def _statement(fields: ReceiptFields, time: Any) -> dict[str, Any]:
    return {
        "kind": str(fields.kind),
        "query_commitment": fields.query_commitment,
        "answer_commitment": fields.answer_commitment,
        "epsilon": fields.epsilon,
        "datasets": [d.to_json() for d in fields.datasets],
        "time": time,
    }


def verify_receipt(
    receipt: bytes | str | Mapping[str, Any],
    key: VerifyKey,
    witnesses: Sequence[NoteVerifier] = (),
) -> Receipt:
    """Check a receipt offline; ProofInvalid names the first part that fails.

    ``witnesses`` are the cosigners whose cosignatures of a witnessed checkpoint are
    checked (others are ignored, as c2sp.org/signed-note asks); the receipt's
    ``cosigners`` names those that verified.
    """
    body = _load(receipt)
    if not isinstance(body, dict) or not _SIGNED <= set(body) <= _SIGNED | _UNSIGNED:
        raise _invalid(
            "receipt",
            f"must have the keys {', '.join(sorted(_SIGNED))}, and may have opening and witnessed",
        )
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
    if not isinstance(statement, dict) or set(statement) != set(_BOUND):
        raise _invalid(
            "receipt statement", f"must have exactly the keys {', '.join(sorted(_BOUND))}"
        )
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
    signature = body["signature"]
    unsigned = {name: body[name] for name in _SIGNED if name != "signature"}
    try:
        if not isinstance(signature, str) or len(signature) != 128:
            raise ValueError(signature)
        key.verify(canonical_json(unsigned, where="receipt"), bytes.fromhex(signature))
    except (ValueError, InvalidInput, BadSignatureError) as error:
        raise _invalid("receipt signature", "does not verify") from error
    opening: QueryOpening | None = None
    if "opening" in body:
        parsed = parse_opening(body["opening"])
        if not isinstance(parsed, QueryOpening):
            raise _invalid("query opening", "is not a query opening")
        verify_opening(parsed, statement)
        opening = parsed
    cosigners = {} if "witnessed" not in body else _witnessed(body["witnessed"], head, witnesses)
    return Receipt(
        node_key,
        statement,
        index,
        entry_bytes,
        path,
        head,
        bytes.fromhex(signature),
        opening,
        cosigners,
    )


def _witnessed(value: Any, head: TreeHead, witnesses: Sequence[NoteVerifier]) -> dict[str, int]:
    """The cosigners among ``witnesses`` of a checkpoint the node signed, extending ``head``."""
    _shape(value, {"checkpoint", "consistency"}, "witnessed checkpoint")
    if not isinstance(value["checkpoint"], str) or not isinstance(value["consistency"], list):
        raise _invalid("witnessed checkpoint", "needs a note's text and a list of hashes")
    note = parse_note(value["checkpoint"], "witnessed checkpoint")
    checkpoint = parse_checkpoint(note.text, "witnessed checkpoint")
    log = log_verifier(head.key)
    if checkpoint.origin != log.name:
        raise _invalid("witnessed checkpoint", f"is of another log: {checkpoint.origin!r}")
    verified = verify_note(note, (log, *witnesses))
    if log.name not in verified:
        raise _invalid("witnessed checkpoint", "is not signed by the node's key")
    path = [
        parse_hash(node, what=f"witnessed consistency[{position}]")
        for position, node in enumerate(value["consistency"])
    ]
    if checkpoint.size < head.size:
        raise _invalid("witnessed checkpoint", "is smaller than the receipt's head")
    if checkpoint.size == head.size and (path or checkpoint.root != head.root):
        raise _invalid("witnessed checkpoint", "has another root than the receipt's head")
    if checkpoint.size > head.size:
        verify_consistency(head.size, checkpoint.size, path, head.root, checkpoint.root)
    return {name: time for name, time in verified.items() if time is not None}


def _load(receipt: bytes | str | Mapping[str, Any]) -> Any:
    if isinstance(receipt, Mapping):
        return dict(receipt)
    try:
        text = receipt.decode("utf-8") if isinstance(receipt, bytes) else receipt
        return json.loads(text, parse_float=_no_float, parse_constant=_no_float)
    except RecursionError:
        raise _invalid("receipt", "is nested too deeply to be a receipt") from None
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
