"""Signed messages between nodes: every request and every answer, Ed25519 by PyNaCl.

A request carries five headers::

    Entrepot-Key        the sender's public key (64 hex digits)
    Entrepot-Recipient  the recipient's public key
    Entrepot-Timestamp  seconds since the epoch, as the sender's clock read them
    Entrepot-Nonce      32 random hex digits, never sent twice
    Entrepot-Signature  Ed25519 over the request's canonical text, base64

The canonical text binds the method, the path with its query string, both keys,
the timestamp, the nonce and the SHA-256 of the body, under a context line of its
own, so that a request signature can never pass for a receipt, a tree head or an
answer, nor be sent to another node or at another path. The recipient refuses,
each with its own rule and in this order: a missing or malformed header
(``envelope_malformed``), a bad signature (``envelope_signature``, checked before the
key is looked up, so a stranger cannot probe which keys are peers'), a key no
operator added (``envelope_unknown_key``), a message for another node
(``envelope_recipient``), a timestamp further than ``peer_clock_skew_s`` from its
clock (``envelope_clock_skew``), a nonce it has seen (``envelope_replay``). A nonce
is remembered as long as its timestamp would be accepted, so a replay is refused
either way.

An answer is signed too: ``Entrepot-Signature`` over the request's digest
(:func:`request_digest`, the SHA-256 of the request's signature, which covers who
asked, the method, the path, the body and the nonce), the status, the answering key
and the SHA-256 of the body. An answer therefore checks for the one request it
answers: it cannot be replayed for another request, altered on the way, nor passed
off by a peer on the path as the answer to another request, its own under the same
nonce included (``response_signature``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from entrepot.errors import PeerError, Unauthorized

__all__ = [
    "HEADERS",
    "Sender",
    "check_response",
    "key_hex",
    "open_request",
    "parse_key",
    "request_digest",
    "sign_request",
    "sign_response",
    "signed_for",
]

KEY = "Entrepot-Key"
RECIPIENT = "Entrepot-Recipient"
TIMESTAMP = "Entrepot-Timestamp"
NONCE = "Entrepot-Nonce"
SIGNATURE = "Entrepot-Signature"
HEADERS = (KEY, RECIPIENT, TIMESTAMP, NONCE, SIGNATURE)

_REQUEST = b"entrepot-federation-request/v1\n"
_RESPONSE = b"entrepot-federation-response/v2\n"
_HEX64 = frozenset("0123456789abcdef")
# Seconds since the epoch: past year 33,000 at 12 digits, far inside a float's exact range.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def key_hex(key: VerifyKey) -> str:
    return bytes(key).hex()


def parse_key(text: str) -> VerifyKey:
    """A public key written as 64 lowercase hex digits."""
    if len(text) != 64 or not set(text) <= _HEX64:
        raise ValueError("a public key is 64 lowercase hex digits")
    return VerifyKey(bytes.fromhex(text))


def _request_text(
    method: str, target: str, sender: str, recipient: str, timestamp: str, nonce: str, body: bytes
) -> bytes:
    lines = (method.upper(), target, sender, recipient, timestamp, nonce)
    digest = hashlib.sha256(body).hexdigest()
    return _REQUEST + "\n".join((*lines, digest)).encode()


def _response_text(request: str, status: int, responder: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return _RESPONSE + f"{request}\n{status}\n{responder}\n{digest}".encode()


def sign_request(
    key: SigningKey,
    recipient: VerifyKey,
    method: str,
    target: str,
    body: bytes,
    *,
    now: datetime,
) -> dict[str, str]:
    """The headers that sign a request to ``recipient`` for ``target`` (path and query)."""
    sender = key_hex(key.verify_key)
    to = key_hex(recipient)
    timestamp = str(int(now.replace(tzinfo=now.tzinfo or UTC).timestamp()))
    nonce = secrets.token_hex(16)
    text = _request_text(method, target, sender, to, timestamp, nonce, body)
    signature = base64.b64encode(key.sign(text).signature).decode()
    return {KEY: sender, RECIPIENT: to, TIMESTAMP: timestamp, NONCE: nonce, SIGNATURE: signature}


@dataclass(frozen=True)
class Sender:
    """Who signed a request that checked: its key, and the nonce it used."""

    key: str
    nonce: str


def _refuse(rule: str, message: str, hint: str) -> Unauthorized:
    return Unauthorized(message, hint=hint, rule=rule)


def _verified(headers: Mapping[str, str], method: str, target: str, body: bytes) -> Sender:
    """The sender of a request whose headers are well formed and whose signature
    matches its content, by the key it names; :class:`Unauthorized` naming the rule."""
    values = {name: headers.get(name) for name in HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise _refuse(
            "envelope_malformed",
            f"the request is not signed: {', '.join(missing)} missing",
            "peers sign every request to another node; add this node as a peer and retry",
        )
    sender, to, timestamp, nonce, signature = (str(values[name]) for name in HEADERS)
    try:
        parse_key(sender)
        raw_signature = base64.b64decode(signature, validate=True)
    except (ValueError, binascii.Error):
        raise _refuse(
            "envelope_malformed",
            "the request's signature headers are malformed",
            "send a key as 64 hex digits, a timestamp in seconds and a base64 signature",
        ) from None
    # Digits only, as a sender writes them: ``int`` would also take signs, spaces,
    # underscores and numbers too large for the clock's arithmetic.
    if not _TIMESTAMP.fullmatch(timestamp):
        raise _refuse(
            "envelope_malformed",
            "the request's timestamp is not a number of seconds",
            "send the seconds since the epoch, in decimal digits",
        )
    if len(nonce) != 32 or not set(nonce) <= _HEX64:
        raise _refuse(
            "envelope_malformed",
            "the request's nonce is not 32 hex digits",
            "send a fresh random nonce of 16 bytes with each request",
        )
    text = _request_text(method, target, sender, to, timestamp, nonce, body)
    try:
        parse_key(sender).verify(text, raw_signature)
    except (BadSignatureError, ValueError):
        raise _refuse(
            "envelope_signature",
            "the request's signature does not match its content",
            "the request was altered on the way, or signed with another key",
        ) from None
    return Sender(sender, nonce)


def signed_for(headers: Mapping[str, str], method: str, target: str, body: bytes) -> bool:
    """Whether ``headers`` sign this very request (method, path, body) with the key they
    name, whoever that key is: an answer signed for such a request's digest can pass
    for no other request."""
    try:
        _verified(headers, method, target, body)
    except Unauthorized:
        return False
    return True


def open_request(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    *,
    recipient: VerifyKey,
    trusted: Callable[[str], bool],
    fresh: Callable[[str, str], bool],
    now: datetime,
    max_skew_s: float,
) -> Sender:
    """Check a signed request; its sender, or :class:`Unauthorized` naming the rule.

    ``trusted(key)`` says whether an operator added that key; ``fresh(key, nonce)``
    records the nonce and says whether it was new. The nonce is recorded last, once
    everything else checked, so a forged request cannot burn a real one's nonce.
    """
    # The signature first: a caller without the key's secret is told the same whether
    # or not the key is a peer's, so no stranger can probe whom this node trusts.
    sender = _verified(headers, method, target, body)
    if not trusted(sender.key):
        raise _refuse(
            "envelope_unknown_key",
            f"no peer of this node has the key {sender.key}",
            "an operator of this node trusts a peer with `entrepot peer add URL --key KEY`",
        )
    if headers.get(RECIPIENT) != key_hex(recipient):
        raise _refuse(
            "envelope_recipient",
            "the request was signed for another node",
            "sign requests for the key this node's `entrepot node id` shows",
        )
    stamp = int(str(headers.get(TIMESTAMP)))
    skew = abs(now.replace(tzinfo=now.tzinfo or UTC).timestamp() - stamp)
    if skew > max_skew_s:
        raise _refuse(
            "envelope_clock_skew",
            f"the request's timestamp is {skew:.0f} s from this node's clock "
            f"(at most {max_skew_s:.0f} s)",
            "set both nodes' clocks by NTP, or raise ENTREPOT_PEER_CLOCK_SKEW_S",
        )
    if not fresh(sender.key, sender.nonce):
        raise _refuse(
            "envelope_replay",
            "the request's nonce was used before: a replay",
            "send every request with a new nonce",
        )
    return sender


def request_digest(headers: Mapping[str, str]) -> str:
    """What an answer to a request is signed for: the SHA-256 of the request's
    ``Entrepot-Signature`` as sent (of nothing for a request without one).

    The signature covers the sender's key, the method, the path, the body and the
    nonce, and a recipient answers past its signature check only a request whose
    signature matches all of them, so the digest names one request of one sender. A
    request altered on the way but carrying its sender's signature is refused
    (``envelope_signature``) with an answer bound to that signature: its sender learns
    that what reached the peer is not what it signed.
    """
    return hashlib.sha256((headers.get(SIGNATURE) or "").encode()).hexdigest()


def sign_response(key: SigningKey, request: str, status: int, body: bytes) -> str:
    """The signature of an answer to the request whose digest is ``request``."""
    text = _response_text(request, status, key_hex(key.verify_key), body)
    return base64.b64encode(key.sign(text).signature).decode()


def check_response(
    peer: str, key: VerifyKey, request: str, status: int, body: bytes, signature: str | None
) -> None:
    """Refuse an answer ``peer`` did not sign for the request whose digest is ``request``."""
    try:
        raw = base64.b64decode(signature or "", validate=True)
        key.verify(_response_text(request, status, key_hex(key), body), raw)
    except (ValueError, binascii.Error, BadSignatureError):
        raise PeerError(
            f"peer {peer} answered without a valid signature",
            hint="something on the path answered in the peer's place (a proxy in front of "
            "it, say) or altered its answer, or the peer's key changed; check the key with "
            "its operator and `entrepot peer add` it again",
            peer=peer,
            rule="response_signature",
        ) from None
