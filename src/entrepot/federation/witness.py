"""Peers witness each other's logs by the C2SP witness protocol (c2sp.org/tlog-witness).

As a witness, a node keeps, for each peer, the latest checkpoint of the peer's log
it cosigned. ``POST /federation/v1/witness/add-checkpoint`` takes a peer's new
checkpoint with a consistency proof from that one, checks the peer's signature and
the proof, records the new checkpoint and answers its cosignature (Ed25519,
c2sp.org/tlog-cosignature), with the protocol's status codes, so any witness
software can take a node's place and a node can witness any log of its peers:

====  =======================  =================================================
code  rule                     refuses
====  =======================  =================================================
400   ``witness_malformed``    a body that is not ``old N``, proof lines, a blank
                               line and a checkpoint; an old size past the new one
403   ``witness_signature``    a checkpoint the peer's key did not sign
404   ``witness_unknown_log``  an origin that is no peer's log
409   ``witness_old_size``     an old size that is not the one cosigned last (the
                               answer is that size, ``text/x.tlog.size``)
422   ``witness_fork``         a checkpoint not consistent with the one cosigned
                               last: the peer's log shows two histories
====  =======================  =================================================

A refused fork is logged (a ``peer`` entry ``fork_refused`` with both heads), as
evidence. A witness also pulls a peer's checkpoint (``GET
/federation/v1/checkpoint?old=N``, the same body) and checks it the same way; a node
asked for a proof from a size its log has not reached refuses with 400,
``checkpoint_old_size``.

As a log, a node answers a peer's query with a receipt that carries its latest
checkpoint, signed by its key alone, and a proof that it extends the receipt's head;
then it asks every peer to cosign that checkpoint in the background
(:func:`cosign_later`), off the answer's path. ``GET
/federation/v1/checkpoint/cosigned?old=N`` serves the latest checkpoint its peers
cosigned with a proof from the receipt's head, and :func:`upgraded_receipt` puts it
in a receipt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from entrepot._background import Coalesced
from entrepot.errors import (
    Conflict,
    EntrepotError,
    Forbidden,
    InvalidInput,
    NotFound,
    PeerError,
    ProofInvalid,
)
from entrepot.federation.envelope import key_hex
from entrepot.federation.models import Peer
from entrepot.transparency.merkle import EMPTY_ROOT, verify_consistency
from entrepot.transparency.notes import (
    Checkpoint,
    Note,
    NoteSignature,
    checkpoint_origin,
    cosign,
    cosigner_name,
    log_verifier,
    parse_checkpoint,
    parse_note,
    parse_signature_lines,
    signed_checkpoint,
    verify_note,
    witness_verifier,
)

if TYPE_CHECKING:
    from entrepot.exchange import Exchange

__all__ = [
    "CHECKPOINT_PATH",
    "COSIGNED_PATH",
    "SIZE_TYPE",
    "SUBMIT_PATH",
    "Submission",
    "Witness",
    "cosign_later",
    "cosigned_checkpoint",
    "cosigned_submission",
    "parse_submission",
    "submission_for",
    "upgraded_receipt",
    "witnessed_receipt",
]

SUBMIT_PATH = "federation/v1/witness/add-checkpoint"
CHECKPOINT_PATH = "federation/v1/checkpoint"
COSIGNED_PATH = "federation/v1/checkpoint/cosigned"
SIZE_TYPE = "text/x.tlog.size"
# c2sp.org/tlog-witness: a client sends at most 63 proof lines.
MAX_PROOF = 63
# Sizes stay within I-JSON's exact integers (RFC 7493 section 2.2), as the log entries
# recording a refused fork and the node's database hold them.
MAX_SIZE = 2**53 - 1
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Submission:
    """An add-checkpoint body: the old size, a consistency proof and the checkpoint note."""

    old: int
    proof: tuple[bytes, ...]
    note: Note

    def to_text(self) -> str:
        lines = [f"old {self.old}"] + [base64.b64encode(h).decode() for h in self.proof]
        return "".join(line + "\n" for line in lines) + "\n" + self.note.to_text()


def _malformed(why: str) -> InvalidInput:
    return InvalidInput(
        f"the add-checkpoint body {why}",
        hint="send `old N`, the consistency proof's lines, a blank line and the checkpoint "
        "(c2sp.org/tlog-witness)",
        rule="witness_malformed",
    )


def parse_submission(body: bytes | str) -> Submission:
    """An add-checkpoint body, strictly; InvalidInput (``witness_malformed``) if it is not one."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise _malformed("is not UTF-8") from None
    head, blank, rest = text.partition("\n\n")
    lines = head.split("\n")
    if not blank or not lines[0].startswith("old ") or not _SIZE.fullmatch(lines[0][4:]):
        raise _malformed("does not start with `old N` and end its proof with a blank line")
    if len(lines) - 1 > MAX_PROOF:
        raise _malformed(f"holds more than {MAX_PROOF} proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            node = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise _malformed("holds a proof line that is not base64") from None
        if len(node) != 32:
            raise _malformed("holds a proof line that is not a 32-byte hash")
        proof.append(node)
    try:
        note = parse_note(rest, "checkpoint")
        parse_checkpoint(note.text)
    except ProofInvalid as error:
        raise _malformed(f"holds no checkpoint: {error.message}") from None
    return Submission(int(lines[0][4:]), tuple(proof), note)


def _stored_root(peer: Peer) -> bytes:
    if peer.witnessed_checkpoint is None:
        return EMPTY_ROOT
    return parse_checkpoint(parse_note(peer.witnessed_checkpoint).text).root


class Witness:
    """This node as a witness of its peers' logs."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.node = exchange.node

    @property
    def name(self) -> str:
        return cosigner_name(bytes(self.node.verify_key))

    def _peer_of(self, origin: str) -> Peer:
        with self.node.db.read() as session:
            for peer in session.scalars(select(Peer)):
                if checkpoint_origin(bytes.fromhex(peer.public_key)) == origin:
                    return peer
        raise NotFound(
            f"no peer of this node has the log {origin!r}",
            hint="an operator adds the log's node with `entrepot peer add URL --key KEY`",
            rule="witness_unknown_log",
        )

    def add_checkpoint(self, body: bytes | str) -> str:
        """Check a submission and cosign it: the cosignature line, or an error of the tree
        whose status is the protocol's."""
        submission = parse_submission(body)
        checkpoint = parse_checkpoint(submission.note.text)
        peer = self._peer_of(checkpoint.origin)
        try:
            verify_note(submission.note, (log_verifier(bytes.fromhex(peer.public_key)),))
        except ProofInvalid as error:
            raise Forbidden(
                f"peer {peer.name}'s checkpoint of size {checkpoint.size} is not signed by its "
                f"key: {error.message}",
                hint="the checkpoint was altered, or signed by another key",
                rule="witness_signature",
                peer=peer.name,
            ) from None
        self._check(peer, submission, checkpoint)
        now = int(time.time())
        signature = cosign(submission.note.text, self.name, self.node.signing_key, now)
        own = (s for s in submission.note.signatures if s.name == checkpoint.origin)
        kept = Note(submission.note.text, (*own, signature)).to_text()
        with self.node.db.write() as session:
            done = session.execute(
                update(Peer)
                .where(Peer.id == peer.id, func.coalesce(Peer.witnessed_size, 0) == submission.old)
                .values(witnessed_size=checkpoint.size, witnessed_checkpoint=kept)
            )
            moved = done.rowcount == 0  # type: ignore[attr-defined]
        if moved:
            raise self._old_size(self._peer_of(checkpoint.origin), submission.old)
        return signature.line()

    def _old_size(self, peer: Peer, old: int) -> Conflict:
        size = peer.witnessed_size or 0
        return Conflict(
            f"the old size {old} is not {size}, the size of peer {peer.name}'s log this node "
            "cosigned last",
            hint=f"send a consistency proof from size {size}",
            rule="witness_old_size",
            peer=peer.name,
            size=size,
        )

    def _check(self, peer: Peer, submission: Submission, checkpoint: Checkpoint) -> None:
        old, size = submission.old, checkpoint.size
        if old > size:
            raise _malformed(f"has an old size {old} past the checkpoint's size {size}")
        if size > MAX_SIZE:
            raise _malformed(
                f"has a checkpoint of size {size}, past {MAX_SIZE}, the largest size this "
                "witness records (2**53 - 1, an exact integer in JSON)"
            )
        if size == 0 and checkpoint.root != EMPTY_ROOT:
            raise self._fork(peer, checkpoint, "is empty but does not have the empty root")
        if old != (peer.witnessed_size or 0):
            raise self._old_size(peer, old)
        if old == 0:
            if submission.proof:
                raise self._fork(peer, checkpoint, "comes with a proof from the empty tree")
            return
        stored = _stored_root(peer)
        if old == size:
            if stored != checkpoint.root:
                raise self._fork(peer, checkpoint, f"has another root at size {size}")
            return
        try:
            verify_consistency(old, size, list(submission.proof), stored, checkpoint.root)
        except ProofInvalid as error:
            raise self._fork(peer, checkpoint, f"does not extend it ({error.message})") from None

    def _fork(self, peer: Peer, checkpoint: Checkpoint, why: str) -> ProofInvalid:
        from entrepot.federation.remote import log_peer_event
        from entrepot.transparency.entries import actor_name

        cosigned = peer.witnessed_size or 0
        log_peer_event(
            self.exchange,
            actor_name(None),
            peer,
            "fork_refused",
            cosigned_size=cosigned,
            cosigned_root=_stored_root(peer).hex(),
            presented_size=checkpoint.size,
            presented_root=checkpoint.root.hex(),
        )
        return ProofInvalid(
            f"peer {peer.name} presented a checkpoint of size {checkpoint.size} that is not "
            f"consistent with the checkpoint of size {cosigned} this node cosigned: it {why}; "
            "its log shows two histories",
            hint="the peer's log was rewritten or forked; keep both checkpoints as evidence "
            "(`entrepot audit log --kind peer`) and tell the peer's operator",
            part="checkpoint",
            rule="witness_fork",
            peer=peer.name,
        )

    def pull(self, name: str) -> dict[str, Any]:
        """Fetch peer ``name``'s checkpoint with a proof from the one cosigned last, check
        it and cosign it; what was cosigned."""
        peer = self.exchange.peers.get(name)
        old = peer.witnessed_size or 0
        with self.exchange.peers.call(name) as call:
            status, text = call.exchange_text(
                "GET", f"{CHECKPOINT_PATH}?old={old}", idempotent=True
            )
        if status != 200:
            raise PeerError(
                f"peer {name} ({peer.url}) did not serve its checkpoint from size {old} ({status})",
                hint="its log may hold fewer entries than it showed before; ask its operator",
                peer=name,
                rule="witness_pull",
            )
        self.add_checkpoint(text)
        size = parse_checkpoint(parse_submission(text).note.text).size
        return {"peer": name, "old": old, "size": size}

    def checkpoint_of(self, origin_hash: str) -> str:
        """The latest checkpoint of a peer's log this node cosigned (monitors read it)."""
        with self.node.db.read() as session:
            for peer in session.scalars(select(Peer)):
                origin = checkpoint_origin(bytes.fromhex(peer.public_key))
                if _sha256(origin) == origin_hash and peer.witnessed_checkpoint:
                    return peer.witnessed_checkpoint
        raise NotFound(
            "this node cosigned no checkpoint of that log",
            hint="the origin hash is the SHA-256 of the log's origin, in lowercase hex",
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def submission_for(exchange: Exchange, old: int) -> Submission:
    """This node's latest checkpoint with a consistency proof from size ``old``."""
    log = exchange.node.log
    head = log.latest_head()
    if head is None:
        head = log.sign_head()
    if old > head.size:
        raise InvalidInput(
            f"this node's log has a signed head of size {head.size}, smaller than {old}",
            hint="ask for a proof from a size the log has shown",
            rule="checkpoint_old_size",
        )
    proof = log.consistency(old, head.size).path if 0 < old < head.size else []
    note = signed_checkpoint(head.size, head.root, exchange.node.signing_key)
    return Submission(old, tuple(proof), note)


# The size each witness cosigned last, as this process saw it. Kept in memory only: a
# process that does not know it sends 0 and the witness answers it (409), as
# c2sp.org/tlog-witness provides, which spares a durable write per cosigning.
_COSIGNED: dict[tuple[str, str], int] = {}
_COSIGNED_LOCK = threading.Lock()
# The latest checkpoint of each node's log (by its key) as its peers cosigned it, in
# this process. A failed round leaves receipts signed by the node alone (it may be
# closing): the next round, or an upgrade, asks the peers again.
_LATEST: dict[str, Note] = {}
_ROUNDS = Coalesced(
    "entrepot-cosign", "cosigning round of this node's checkpoint failed", daemon=True
)


def _ask(exchange: Exchange, peer: Peer, size: int, note: Note) -> tuple[NoteSignature, ...]:
    """Peer ``peer``'s cosignature of this node's checkpoint of ``size``, or none."""
    verifier = witness_verifier(bytes.fromhex(peer.public_key))
    log = exchange.node.log
    known = (key_hex(exchange.node.verify_key), peer.public_key)
    with _COSIGNED_LOCK:
        old = _COSIGNED.get(known, 0)
    timeout = exchange.settings.witness_timeout_s
    try:
        with exchange.peers.call(peer.name) as call:
            for _ in range(2):
                if old > size:
                    return ()
                proof = tuple(log.consistency(old, size).path) if 0 < old < size else ()
                body = Submission(old, proof, note).to_text().encode()
                status, text = call.exchange_text("POST", SUBMIT_PATH, body, timeout_s=timeout)
                if status == 409 and _SIZE.fullmatch(text.strip()):
                    old = int(text.strip())
                    continue
                if status != 200:
                    exchange.peers.note(peer.name, f"did not cosign size {size} ({status})")
                    return ()
                signatures = parse_signature_lines(text, "cosignature")
                verify_note(Note(note.text, signatures), (verifier,))
                break
            else:
                return ()
    except EntrepotError as error:
        exchange.peers.note(peer.name, f"did not cosign: {error.message}")
        return ()
    with _COSIGNED_LOCK:
        _COSIGNED[known] = max(_COSIGNED.get(known, 0), size)
    return tuple(s for s in signatures if verifier.matches(s))


def witnessed_receipt(exchange: Exchange, receipt: dict[str, Any]) -> dict[str, Any]:
    """``receipt`` with this node's latest checkpoint, signed by its key, and a
    consistency proof from the receipt's head to it (outside the receipt's signature:
    the checkpoint's signatures and the proof stand on their own). No peer is asked
    on the answer's path: the peers cosign in the background (:func:`cosign_later`),
    and :func:`upgraded_receipt` later swaps in a checkpoint they cosigned."""
    submission = submission_for(exchange, _head_size(receipt))
    return {**receipt, "witnessed": _witnessed(submission)}


def _witnessed(submission: Submission) -> dict[str, Any]:
    return {
        "checkpoint": submission.note.to_text(),
        "consistency": [h.hex() for h in submission.proof],
    }


def _head_size(receipt: dict[str, Any]) -> int:
    log = receipt.get("log")
    head = log.get("head") if isinstance(log, dict) else None
    size = head.get("size") if isinstance(head, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(
            "the receipt has no signed head with a size",
            hint="pass the receipt file the answer came with",
        )
    return size


def cosigned_checkpoint(exchange: Exchange) -> Note:
    """This node's latest checkpoint, with the cosignatures of every peer that gave one
    (each peer asked in parallel, within ``witness_timeout_s``); kept as the latest."""
    submission = submission_for(exchange, 0)
    checkpoint = parse_checkpoint(submission.note.text)
    with exchange.node.db.read() as session:
        peers = list(session.scalars(select(Peer).order_by(Peer.name)))
    if not peers:
        return submission.note
    with ThreadPoolExecutor(max_workers=min(len(peers), 8)) as pool:
        found = pool.map(lambda p: _ask(exchange, p, checkpoint.size, submission.note), peers)
        cosignatures = tuple(s for each in found for s in each)
    note = submission.note.with_signatures(cosignatures)
    key = key_hex(exchange.node.verify_key)
    with _COSIGNED_LOCK:
        kept = _LATEST.get(key)
        if kept is None or parse_checkpoint(kept.text).size <= checkpoint.size:
            _LATEST[key] = note
    return note


def cosign_later(exchange: Exchange) -> None:
    """Have the peers cosign this node's latest checkpoint in a thread of its own, off
    the path of the answer that asks: one round at a time per node, and one more after
    it if asked while it runs (c2sp.org/tlog-witness: a log submits periodically)."""
    _ROUNDS.ask(key_hex(exchange.node.verify_key), lambda: cosigned_checkpoint(exchange))


def cosigned_submission(exchange: Exchange, old: int) -> Submission:
    """This node's latest checkpoint its peers cosigned, with a consistency proof from size
    ``old``; a round is run now if none covers ``old`` yet (never for a size past the
    log's latest head, so no caller can have the peers asked more than the log grows)."""
    submission_for(exchange, old)  # refuses an old size past the latest head
    with _COSIGNED_LOCK:
        note = _LATEST.get(key_hex(exchange.node.verify_key))
    if note is None or parse_checkpoint(note.text).size < old:
        note = cosigned_checkpoint(exchange)
    size = parse_checkpoint(note.text).size
    proof = exchange.node.log.consistency(old, size).path if 0 < old < size else []
    return Submission(old, tuple(proof), note)


def upgraded_receipt(
    exchange: Exchange, receipt: dict[str, Any], peer: str | None = None
) -> dict[str, Any]:
    """``receipt`` with the latest checkpoint its node's peers cosigned, extending its
    head: this node's own, or, for a receipt peer ``peer`` signed, asked of that peer
    (``GET /federation/v1/checkpoint/cosigned?old=N``). The caller verifies it."""
    size = _head_size(receipt)
    if peer is None:
        return {**receipt, "witnessed": _witnessed(cosigned_submission(exchange, size))}
    with exchange.peers.call(peer) as call:
        status, text = call.exchange_text("GET", f"{COSIGNED_PATH}?old={size}", idempotent=True)
        if status != 200:
            raise PeerError(
                f"peer {peer} ({call.url}) did not serve a cosigned checkpoint from size "
                f"{size} ({status})",
                hint="check that the receipt is this peer's, with `entrepot receipt verify --peer`",
                peer=peer,
                rule="witness_upgrade",
            )
    try:
        submission = parse_submission(text)
    except InvalidInput as error:
        raise PeerError(
            f"peer {peer} answered a cosigned checkpoint that is not one: {error.message}",
            hint="the peer may not be an entrepot node of this version; ask its operator",
            peer=peer,
            rule="witness_upgrade",
        ) from None
    if submission.old != size:
        raise PeerError(
            f"peer {peer} answered a proof from size {submission.old}, not {size}",
            hint="ask again; the peer's answer does not fit the receipt",
            peer=peer,
            rule="witness_upgrade",
        )
    return {**receipt, "witnessed": _witnessed(submission)}
