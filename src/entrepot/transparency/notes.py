"""C2SP signed notes, checkpoints and Ed25519 cosignatures (c2sp.org/signed-note,
c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature).

A note is text ending in a newline, a blank line, then signature lines
``— <key name> base64(key ID ‖ signature)``. A checkpoint is a note whose text is
the log's origin, its tree size and its base64 root hash, one per line. A
cosignature (signature type ``0x04``) is a witness's Ed25519 signature over
``cosignature/v1\\ntime <t>\\n`` and the checkpoint's text, prefixed with the
8-byte big-endian time.

A node signs its checkpoints and its cosignatures with its one Ed25519 key: the
key IDs differ by the type byte, and the signed texts by their first line (an
origin, ``cosignature/v1``) from everything else the key signs (JSON heads and
receipts begin with ``{``, messages between nodes with their own context line).
Signing and verifying is PyNaCl's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.transparency.merkle import HASH_SIZE

__all__ = [
    "COSIGNATURE",
    "ED25519",
    "Checkpoint",
    "Note",
    "NoteSignature",
    "NoteVerifier",
    "checkpoint_origin",
    "cosign",
    "cosigner_name",
    "log_verifier",
    "parse_checkpoint",
    "parse_note",
    "parse_signature_lines",
    "parse_vkey",
    "sign_note",
    "signed_checkpoint",
    "verify_note",
    "witness_verifier",
]

ED25519 = 0x01
COSIGNATURE = 0x04
DASH = "\u2014"
# The spec asks verifiers to accept at least 16 signatures; a node has few peers.
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 64 * 1024
_COSIGNED_HEADER = "cosignature/v1\n"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_NAME = re.compile(r"[^\s+]+")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(what, "is not standard base64") from None
    if _b64(data) != text:
        raise _malformed(what, "is not canonical base64")
    return data


def _malformed(what: str, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"{what} {why}",
        hint="the note was altered or comes from a program that does not follow c2sp.org",
        part=what,
    )


def key_id(name: str, kind: int, public_key: bytes) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4], as signed-note recommends."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: the key's name, its 4-byte ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{DASH} {self.name} {_b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A note's text (ending in a newline) and its signatures, in their order."""

    text: str
    signatures: tuple[NoteSignature, ...] = field(default=())

    def to_text(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, more: tuple[NoteSignature, ...]) -> Note:
        """This note with ``more`` signatures after its own (a line already held is kept once)."""
        known = set(self.signatures)
        return Note(self.text, self.signatures + tuple(s for s in more if s not in known))


def parse_signature_line(line: str, what: str = "signature line") -> NoteSignature:
    """``— <name> base64(id ‖ signature)``, without its newline."""
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != DASH or not _NAME.fullmatch(parts[1]):
        raise _malformed(what, "is not `— <key name> <base64 signature>`")
    raw = _unb64(parts[2], what)
    if len(raw) < 5:
        raise _malformed(what, "is shorter than a key ID and a signature")
    return NoteSignature(parts[1], raw[:4], raw[4:])


def parse_signature_lines(text: str, what: str = "signature lines") -> tuple[NoteSignature, ...]:
    """Signature lines, each ending with a newline (a witness's answer to add-checkpoint)."""
    if not text.endswith("\n"):
        raise _malformed(what, "do not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(what, f"are more than {MAX_SIGNATURES}")
    return tuple(parse_signature_line(line, what) for line in lines)


def parse_note(data: bytes | str, what: str = "signed note") -> Note:
    """Split a note into its text and signatures, strictly; ProofInvalid names what is wrong."""
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise _malformed(what, f"is larger than {MAX_NOTE_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(what, "is not UTF-8") from None
    if len(data) > MAX_NOTE_BYTES:
        raise _malformed(what, f"is larger than {MAX_NOTE_BYTES} bytes")
    if _CONTROL.search(data):
        raise _malformed(what, "holds a control character other than newline")
    split = data.rfind("\n\n")
    if split < 0 or not data.endswith("\n"):
        raise _malformed(what, "has no blank line before its signatures, or no final newline")
    text, signed = data[: split + 1], data[split + 2 :]
    if not signed:
        raise _malformed(what, "has no signature")
    return Note(text, parse_signature_lines(signed, f"{what} signature line"))


@dataclass(frozen=True)
class NoteVerifier:
    """A key a verifier trusts: its name, its type (Ed25519 or cosignature) and the key."""

    name: str
    kind: int
    key: VerifyKey

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"key name {self.name!r} is empty or holds a space or a plus")
        if self.kind not in (ED25519, COSIGNATURE):
            raise ValueError(f"signature type {self.kind} is not Ed25519 nor a cosignature")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.kind, bytes(self.key))

    def vkey(self) -> str:
        """``<name>+<hex key ID>+base64(type ‖ key)``, the form witness software is given."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([self.kind]) + bytes(self.key))}"

    def matches(self, signature: NoteSignature) -> bool:
        return signature.name == self.name and signature.key_id == self.key_id

    def verify(self, text: str, signature: NoteSignature) -> int | None:
        """Raise ProofInvalid unless ``signature`` signs ``text``; a cosignature's time."""
        message, raw, time = text.encode(), signature.signature, None
        if self.kind == COSIGNATURE:
            if len(raw) != 8 + 64:
                raise _bad(self.name, "is not a time and a 64-byte signature")
            (time,) = struct.unpack(">Q", raw[:8])
            if time >= 2**63:
                raise _bad(self.name, "has a time past 2^63 - 1")
            message, raw = _cosigned_message(text, time), raw[8:]
        elif len(raw) != 64:
            raise _bad(self.name, "is not a 64-byte Ed25519 signature")
        try:
            self.key.verify(message, raw)
        except BadSignatureError:
            raise _bad(self.name, "does not verify") from None
        return time


def _bad(name: str, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"the signature of {name} {why}",
        hint="the note was altered after it was signed; a signature of a trusted key that "
        "fails rejects the whole note",
        part="note signature",
    )


def parse_vkey(text: str) -> NoteVerifier:
    """A verifier key ``name+id+base64(type ‖ key)`` (Ed25519 or cosignature)."""
    # The name holds no plus; the base64 key may.
    parts = text.strip().split("+", 2)
    try:
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise ValueError("is not `<name>+<8 hex digits>+<base64 key>`")
        raw = base64.b64decode(parts[2], validate=True)
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE):
            raise ValueError("is not an Ed25519 or cosignature key")
        verifier = NoteVerifier(parts[0], raw[0], VerifyKey(raw[1:]))
        if verifier.key_id.hex() != parts[1]:
            raise ValueError("has a key ID that does not match its name and key")
    except (binascii.Error, ValueError) as error:
        raise InvalidInput(
            f"verifier key {text.strip()[:80]!r} {error}",
            hint="copy the witness_vkey or log_vkey that the node's `entrepot node id` prints",
        ) from None
    return verifier


def sign_note(text: str, name: str, key: SigningKey) -> NoteSignature:
    """An Ed25519 (type 0x01) signature of a note's text by the key named ``name``."""
    verifier = NoteVerifier(name, ED25519, key.verify_key)
    return NoteSignature(name, verifier.key_id, bytes(key.sign(text.encode()).signature))


def _cosigned_message(text: str, time: int) -> bytes:
    return f"{_COSIGNED_HEADER}time {time}\n{text}".encode()


def cosign(text: str, name: str, key: SigningKey, time: int) -> NoteSignature:
    """A timestamped Ed25519 cosignature (type 0x04) of a checkpoint's text, at POSIX ``time``."""
    verifier = NoteVerifier(name, COSIGNATURE, key.verify_key)
    signed = key.sign(_cosigned_message(text, time)).signature
    return NoteSignature(name, verifier.key_id, struct.pack(">Q", time) + bytes(signed))


def verify_note(note: Note, verifiers: tuple[NoteVerifier, ...]) -> dict[str, int | None]:
    """The names of the ``verifiers`` whose signatures on ``note`` verify (with a cosignature's
    time). Signatures of unknown keys are ignored; one of a known key that fails rejects the
    note; a note no known key signed is rejected."""
    verified: dict[str, int | None] = {}
    for signature in note.signatures:
        for verifier in verifiers:
            if verifier.matches(signature):
                verified[verifier.name] = verifier.verify(note.text, signature)
    if not verified:
        raise ProofInvalid(
            "no signature of a trusted key is on the note",
            hint="check that the note comes from the log you trust, and that its key is known",
            part="note signature",
        )
    return verified


def checkpoint_origin(public_key: bytes) -> str:
    """A node's log origin, from its key: stable while the key is, whatever its name or URL."""
    return f"entrepot.log/{public_key.hex()[:32]}"


def cosigner_name(public_key: bytes) -> str:
    """A node's name as a witness (cosigner), from its key."""
    return f"entrepot.witness/{public_key.hex()[:32]}"


@dataclass(frozen=True)
class Checkpoint:
    """A log's origin, tree size and root hash: the text of a checkpoint note."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str, what: str = "checkpoint") -> Checkpoint:
    """A checkpoint's text (origin, size, root, extension lines), strictly."""
    if not text.endswith("\n"):
        raise _malformed(what, "does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise _malformed(what, "is not three or more non-empty lines")
    origin, size_text, root_text = lines[:3]
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
        raise _malformed(what, "has a tree size that is not a decimal without leading zeroes")
    root = _unb64(root_text, f"{what} root hash")
    if len(root) != HASH_SIZE:
        raise _malformed(what, "has a root hash that is not 32 bytes")
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:]))


def log_verifier(public_key: bytes) -> NoteVerifier:
    """The verifier of a node's checkpoints: its origin as the key name, Ed25519."""
    return NoteVerifier(checkpoint_origin(public_key), ED25519, VerifyKey(public_key))


def witness_verifier(public_key: bytes) -> NoteVerifier:
    """The verifier of a node's cosignatures as a witness."""
    return NoteVerifier(cosigner_name(public_key), COSIGNATURE, VerifyKey(public_key))


def signed_checkpoint(size: int, root: bytes, key: SigningKey) -> Note:
    """The node's checkpoint of its log at ``size`` with ``root``, signed by its key.

    Ed25519 signing is deterministic (RFC 8032), so the checkpoint of a head is the
    same note whenever it is made: none needs to be stored.
    """
    origin = checkpoint_origin(bytes(key.verify_key))
    text = Checkpoint(origin, size, root).text()
    return Note(text, (sign_note(text, origin, key),))
