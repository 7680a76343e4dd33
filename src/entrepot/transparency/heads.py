"""Signed tree heads: the node's Ed25519 signature on (size, root hash, time).

A head is canonical JSON::

    {"format": "entrepot.head/1", "key": <hex>, "root": <hex>, "signature": <hex>,
     "size": <int>, "time": "2026-01-31T12:00:00.000000Z"}

The signature (PyNaCl, Ed25519) covers the canonical JSON of every key but
``signature``; ``format`` separates heads from anything else the key signs.
Verifying needs only the node's public key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from entrepot.errors import InvalidInput, NotFound, ProofInvalid
from entrepot.transparency.canonical import (
    canonical_json,
    parse_canonical,
    parse_hash,
    parse_timestamp,
    timestamp,
)

# PyNaCl loads to check a signature or a key, not to read a stored head.
if TYPE_CHECKING:
    from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "HEAD_FORMAT",
    "TreeHead",
    "load_verify_key",
    "read_head",
    "read_verify_key",
    "sign_head",
    "verify_head",
]

HEAD_FORMAT = "entrepot.head/1"
_KEYS = {"format", "key", "root", "signature", "size", "time"}
_HEX64 = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    time: str
    key: bytes
    signature: bytes

    def body(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "key": self.key.hex(),
            "root": self.root.hex(),
            "size": self.size,
            "time": self.time,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature.hex()}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @property
    def moment(self) -> datetime:
        return parse_timestamp(self.time, what="tree head time")

    @classmethod
    def from_json(cls, body: Any, *, what: str = "tree head") -> TreeHead:
        """Parse a head strictly: exact keys and types, or ProofInvalid naming the field."""
        if not isinstance(body, dict) or set(body) != _KEYS:
            raise ProofInvalid(
                f"{what} must have exactly the keys {', '.join(sorted(_KEYS))}",
                hint="the head was altered or comes from another program",
                part=what,
            )
        if body["format"] != HEAD_FORMAT:
            raise ProofInvalid(
                f"{what} has format {body['format']!r}, not {HEAD_FORMAT!r}",
                hint="the head was altered or comes from another program",
                part=what,
            )
        size = body["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProofInvalid(
                f"{what} size is not a non-negative integer", hint="it was altered", part=what
            )
        parse_timestamp(body["time"], what=f"{what} time")
        return cls(
            size=size,
            root=parse_hash(body["root"], what=f"{what} root"),
            time=body["time"],
            key=parse_hash(body["key"], what=f"{what} key"),
            signature=_parse_signature(body["signature"], what=f"{what} signature"),
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str = "tree head") -> TreeHead:
        return cls.from_json(parse_canonical(data, what=what), what=what)


def _parse_signature(text: Any, *, what: str) -> bytes:
    if not isinstance(text, str) or not _HEX64.fullmatch(text):
        raise ProofInvalid(
            f"{what} is not a 64-byte Ed25519 signature in lowercase hex",
            hint="the value was altered or truncated",
            part=what,
        )
    return bytes.fromhex(text)


def sign_head(size: int, root: bytes, key: SigningKey, moment: datetime | None = None) -> TreeHead:
    unsigned = TreeHead(size, root, timestamp(moment), bytes(key.verify_key), b"")
    signature = key.sign(canonical_json(unsigned.body())).signature
    return TreeHead(size, root, unsigned.time, unsigned.key, bytes(signature))


def verify_head(head: TreeHead, key: VerifyKey, *, what: str = "tree head") -> None:
    """Raise ProofInvalid unless ``head`` was signed by ``key``."""
    from nacl.exceptions import BadSignatureError

    if head.key != bytes(key):
        raise ProofInvalid(
            f"{what} names key {head.key.hex()[:16]}…, not the node key {bytes(key).hex()[:16]}…",
            hint="check that you hold the right node's public key",
            part=f"{what} key",
        )
    try:
        key.verify(canonical_json(head.body()), head.signature)
    except BadSignatureError as error:
        raise ProofInvalid(
            f"{what} signature does not verify (size {head.size})",
            hint="the head was altered after the node signed it",
            part=f"{what} signature",
        ) from error


def load_verify_key(text: str, *, where: str) -> VerifyKey:
    """A node's public key from its hex form (the content of ``keys/node.pub``)."""
    from nacl.signing import VerifyKey

    value = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise InvalidInput(
            f"{where} does not hold a node public key (64 hex digits)",
            hint="pass the node's keys/node.pub file, or the 64-digit key itself",
        )
    return VerifyKey(bytes.fromhex(value))


def read_verify_key(source: str | None, default: Path) -> VerifyKey:
    """A node key from a file, from 64 hex digits, or (``source`` None) from ``default``."""
    path = default if source is None else Path(source)
    if path.is_file():
        return load_verify_key(path.read_text(), where=str(path))
    if source is None:
        raise NotFound(
            f"no node public key at {default}",
            hint="pass --node-key node.pub (the node's keys/node.pub, or its 64 hex digits)",
        )
    return load_verify_key(source, where="--node-key")


def read_head(path: Path) -> TreeHead:
    """A signed head saved to a file (e.g. by `entrepot audit head --json > head.json`)."""
    if not path.is_file():
        raise NotFound(
            f"no tree head file at {path}", hint="save one with `entrepot audit head --json`"
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ProofInvalid(
            f"{path} is nested too deeply to be a tree head",
            hint="save heads with `entrepot audit head --json`",
            part="earlier tree head",
        ) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ProofInvalid(
            f"{path} is not a JSON tree head: {error}",
            hint="save heads with `entrepot audit head --json`",
            part="earlier tree head",
        ) from error
    return TreeHead.from_json(body, what="earlier tree head")
