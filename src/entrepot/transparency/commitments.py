"""Commitments: public values a guess cannot confirm, which their holder can open.

The log and receipts name a query, an answer and a dataset version by commitment,
never by a plain hash. Publishing is deterministic and queries are short texts, so a
plain SHA-256 let anyone rebuild candidate files or write candidate SQL and match
the hash (a person's diagnosis was recovered that way, at zero ε).

Every commitment is HMAC-SHA256 (RFC 2104, Python's :mod:`hmac`) under a 32-byte key
from :mod:`secrets`:

- ``content_commitment`` = HMAC(version key, SHA-256 of the stored Parquet file). The
  key is drawn once per version and kept with the version on the provider's node, so
  every receipt naming that version carries the same value; only the provider can
  open it (:class:`ContentOpening`), to an auditor of its choice.
- ``query_commitment`` = HMAC(nonce, "entrepot.query\\0" ‖ UTF-8 text) and
  ``answer_commitment`` = HMAC(nonce, "entrepot.answer\\0" ‖ answer bytes), with a fresh
  nonce for every logged query, repeats included: two equal queries never share a
  commitment. The consumer gets the nonce in its receipt (:class:`QueryOpening`); the
  node keeps it for auditors.

Hiding: HMAC under a secret random key is a pseudorandom function, so without the key
a commitment looks random whatever candidates one tries. Binding: opening one value
to two messages needs a SHA-256 collision, provided the key length is fixed (HMAC
pads short keys with zeros, so K and K‖00 would open alike): openings carry exactly
32-byte keys, and anything else is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from entrepot.errors import ProofInvalid

__all__ = [
    "KEY_BYTES",
    "OPENING_FORMAT",
    "ContentOpening",
    "QueryOpening",
    "content_commitment",
    "new_key",
    "parse_opening",
    "verify_opening",
]

# 256 bits: the key is the only secret behind each commitment (HMAC-SHA256's full strength).
KEY_BYTES = 32
OPENING_FORMAT = "entrepot.opening/1"
# Labels keep the query and answer commitments under one nonce apart (domain separation).
_QUERY = b"entrepot.query\x00"
_ANSWER = b"entrepot.answer\x00"
_HEX32 = re.compile(r"[0-9a-f]{64}")
_KEYS = {
    "query": {"format", "kind", "query_text", "nonce", "query_commitment"},
    "content": {
        "format",
        "kind",
        "dataset",
        "version",
        "content_sha256",
        "key",
        "content_commitment",
    },
}


def new_key() -> bytes:
    """A fresh random key (or nonce) for one commitment."""
    return secrets.token_bytes(KEY_BYTES)


def _mac(key: bytes, message: bytes) -> str:
    if len(key) != KEY_BYTES:
        raise ProofInvalid(
            f"a commitment key has {KEY_BYTES} bytes, not {len(key)}",
            hint="use the opening exactly as the node gave it",
            part="opening key",
        )
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def content_commitment(content_sha256: str, key: bytes) -> str:
    """The public commitment to a stored file, given its SHA-256 (hex) and its version's key."""
    if not _HEX32.fullmatch(content_sha256):
        raise ProofInvalid(
            f"content_sha256 {content_sha256!r} is not a SHA-256 in lowercase hex",
            hint="use the opening exactly as the node gave it",
            part="content opening",
        )
    return _mac(key, bytes.fromhex(content_sha256))


@dataclass(frozen=True)
class QueryOpening:
    """A query's text and the nonce it was committed with: what opens its commitments."""

    text: str
    nonce: bytes

    @classmethod
    def fresh(cls, text: str) -> QueryOpening:
        """Commit to ``text`` under a new nonce: call once per logged query, repeats too."""
        return cls(text, new_key())

    @property
    def commitment(self) -> str:
        """``query_commitment``: what the log and the receipt show instead of the text."""
        return _mac(self.nonce, _QUERY + self.text.encode("utf-8"))

    def answer_commitment(self, answer: bytes) -> str:
        """``answer_commitment`` of the answer bytes given for this query."""
        return _mac(self.nonce, _ANSWER + answer)

    def to_json(self) -> dict[str, str]:
        return {
            "format": OPENING_FORMAT,
            "kind": "query",
            "query_text": self.text,
            "nonce": self.nonce.hex(),
            "query_commitment": self.commitment,
        }


@dataclass(frozen=True)
class ContentOpening:
    """A version's file hash and key: opens the ``content_commitment`` the log shows."""

    dataset: str
    version: str
    content_sha256: str
    key: bytes

    @property
    def commitment(self) -> str:
        return content_commitment(self.content_sha256, self.key)

    def to_json(self) -> dict[str, str]:
        return {
            "format": OPENING_FORMAT,
            "kind": "content",
            "dataset": self.dataset,
            "version": self.version,
            "content_sha256": self.content_sha256,
            "key": self.key.hex(),
            "content_commitment": self.commitment,
        }


def parse_opening(opening: bytes | str | Mapping[str, Any]) -> QueryOpening | ContentOpening:
    """An opening from its JSON (as :meth:`QueryOpening.to_json` or ``ContentOpening`` wrote it)."""
    body = _load(opening)
    kind = body.get("kind")
    if body.get("format") != OPENING_FORMAT or not isinstance(kind, str) or kind not in _KEYS:
        raise _invalid("opening", f"is not an {OPENING_FORMAT} query or content opening")
    if set(body) != _KEYS[kind]:
        raise _invalid("opening", f"must have exactly the keys {', '.join(sorted(_KEYS[kind]))}")
    try:
        parsed: QueryOpening | ContentOpening
        if kind == "query":
            parsed = QueryOpening(_text(body, "query_text"), _key(body, "nonce"))
        else:
            parsed = ContentOpening(
                _text(body, "dataset"),
                _text(body, "version"),
                _text(body, "content_sha256"),
                _key(body, "key"),
            )
    except (KeyError, TypeError, ValueError) as error:
        raise _invalid("opening", f"has a missing or malformed field ({error})") from error
    if body[f"{kind}_commitment"] != parsed.commitment:
        raise _invalid("opening", f"does not open the {kind}_commitment it states")
    return parsed


def verify_opening(
    opening: bytes | str | Mapping[str, Any] | QueryOpening | ContentOpening,
    against: Mapping[str, Any],
    *,
    answer: bytes | None = None,
) -> str:
    """Check that ``opening`` opens a commitment in ``against``; return that commitment.

    ``against`` is a log entry (a query, join or release entry, or a dataset_version
    entry) or a receipt's statement. With ``answer``, a query opening must also open
    the answer commitment. Raises :class:`ProofInvalid` naming what does not match.
    """
    parsed = (
        opening if isinstance(opening, QueryOpening | ContentOpening) else parse_opening(opening)
    )
    if isinstance(parsed, QueryOpening):
        if against.get("query_commitment") != parsed.commitment:
            raise _invalid("query opening", "does not open this entry's query_commitment")
        if answer is not None and against.get("answer_commitment") != parsed.answer_commitment(
            answer
        ):
            raise _invalid("answer", "does not open this entry's answer_commitment")
        return parsed.commitment
    named = [{**against, "version": str(against.get("version"))}]
    if "datasets" in against and isinstance(against["datasets"], list):
        named = [d for d in against["datasets"] if isinstance(d, dict)]
    for version in named:
        if version.get("dataset") == parsed.dataset and version.get("version") == parsed.version:
            if version.get("content_commitment") != parsed.commitment:
                raise _invalid(
                    "content opening",
                    f"does not open the content_commitment of {parsed.dataset} "
                    f"version {parsed.version}",
                )
            return parsed.commitment
    raise _invalid(
        "content opening", f"names {parsed.dataset} version {parsed.version}, which this does not"
    )


def _load(opening: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(opening, Mapping):
        return dict(opening)
    try:
        body = json.loads(opening)
    except RecursionError:
        raise _invalid("opening", "is nested too deeply to be an opening") from None
    except (TypeError, UnicodeDecodeError, ValueError) as error:
        raise _invalid("opening", f"is not a JSON object ({error})") from error
    if not isinstance(body, dict):
        raise _invalid("opening", "is not a JSON object")
    return body


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form: no commitment could have been made to it.
        raise ValueError(f"{name} is not valid Unicode text") from None
    return value


def _key(body: Mapping[str, Any], name: str) -> bytes:
    value = _text(body, name)
    if not _HEX32.fullmatch(value):
        raise ValueError(f"{name} is not {KEY_BYTES} bytes in lowercase hex")
    return bytes.fromhex(value)


def _invalid(part: str, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"{part} {why}",
        hint="check that the opening and the receipt or entry are the ones the node gave",
        part=part,
    )
