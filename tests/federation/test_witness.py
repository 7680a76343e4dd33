"""Peers witness each other's logs by the C2SP witness protocol, on loopback.

Node a's log asks node b to cosign its checkpoints; b checks each against the one
it cosigned last, and a log that shows b two histories is refused and logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from tests.api.conftest import running
from tests.federation.nodes import federation_node as _node

from entrepot.api import create_app
from entrepot.errors import PeerError, ProofInvalid
from entrepot.exchange import Exchange
from entrepot.federation.witness import (
    SUBMIT_PATH,
    Submission,
    Witness,
    cosign_later,
    cosigned_checkpoint,
    submission_for,
    upgraded_receipt,
    witnessed_receipt,
)
from entrepot.transparency import TransparencyLog, make_entry
from entrepot.transparency.merkle import verify_consistency
from entrepot.transparency.notes import (
    checkpoint_origin,
    parse_checkpoint,
    parse_note,
    signed_checkpoint,
    verify_note,
    witness_verifier,
)


@dataclass
class Pair:
    log: Exchange
    witness: Exchange
    witness_url: str
    tmp: Path


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    a, b = _node(tmp_path, "a"), _node(tmp_path, "b")
    log, witness = Exchange(a), Exchange(b)
    with running(create_app(a)) as served_a, running(create_app(b)) as served_b:
        log.peers.add(str(served_b.base_url), bytes(b.verify_key).hex())
        witness.peers.add(str(served_a.base_url), bytes(a.verify_key).hex())
        yield Pair(log, witness, str(served_b.base_url).rstrip("/") + "/", tmp_path)
    a.close()
    b.close()


def grow(exchange: Exchange, entries: int) -> None:
    for number in range(entries):
        exchange.node.log.append(make_entry("peer", "operator", action="test", n=number))
    exchange.node.log.sign_head()


def post(url: str, body: str) -> httpx.Response:
    return httpx.post(url + SUBMIT_PATH, content=body.encode(), timeout=60)


def cosigners(exchange: Exchange, note_text: str, witness: Exchange) -> dict[str, int | None]:
    verifier = witness_verifier(bytes(witness.node.verify_key))
    return verify_note(parse_note(note_text), (verifier,))


def test_a_peer_cosigns_each_checkpoint_that_extends_the_last(pair: Pair) -> None:
    grow(pair.log, 3)
    first = cosigned_checkpoint(pair.log)
    assert cosigners(pair.log, first.to_text(), pair.witness)
    grow(pair.log, 5)
    second = cosigned_checkpoint(pair.log)
    assert parse_checkpoint(second.text).size > parse_checkpoint(first.text).size
    assert cosigners(pair.log, second.to_text(), pair.witness)
    # Monitors read the latest checkpoint the witness cosigned, by the origin's hash.
    origin = checkpoint_origin(bytes(pair.log.node.verify_key))
    kept = httpx.get(
        f"{pair.witness_url}federation/v1/witness/{hashlib.sha256(origin.encode()).hexdigest()}"
        "/checkpoint",
        timeout=60,
    )
    assert kept.status_code == 200
    assert parse_note(kept.text).text == second.text
    assert cosigners(pair.log, kept.text, pair.witness)


def test_the_witness_answers_with_the_protocols_status_codes(pair: Pair) -> None:
    grow(pair.log, 4)
    fresh = submission_for(pair.log, 0)
    stranger = SigningKey.generate()
    unknown = Submission(0, (), signed_checkpoint(1, b"\x01" * 32, stranger))
    assert post(pair.witness_url, unknown.to_text()).status_code == 404

    checkpoint = parse_checkpoint(fresh.note.text)
    forged = Submission(0, (), signed_checkpoint(checkpoint.size, b"\x02" * 32, stranger))
    forged_text = forged.to_text().replace(
        forged.note.signatures[0].name, checkpoint.origin
    )  # a stranger's signature under a's key name
    assert post(pair.witness_url, forged_text).status_code == 403

    past = Submission(checkpoint.size + 1, (), fresh.note)
    assert post(pair.witness_url, past.to_text()).status_code == 400
    assert post(pair.witness_url, "old 0\n").status_code == 400

    assert post(pair.witness_url, fresh.to_text()).status_code == 200
    again = post(pair.witness_url, fresh.to_text())  # old 0 is no longer the size cosigned
    assert again.status_code == 409
    assert again.headers["content-type"] == "text/x.tlog.size"
    assert again.text == f"{checkpoint.size}\n"
    grow(pair.log, 2)
    assert post(pair.witness_url, submission_for(pair.log, checkpoint.size).to_text()).is_success

    # A node asked for its own checkpoint from a size its log has not reached says so.
    beyond = httpx.get(
        f"{pair.witness_url}federation/v1/checkpoint", params={"old": 9_165_132}, timeout=60
    )
    assert beyond.status_code == 400
    assert beyond.json()["error"]["rule"] == "checkpoint_old_size"


def fork_of(pair: Pair, entries: int) -> TransparencyLog:
    """Another log signed with a's key: the history a would show someone else."""
    fork = TransparencyLog(pair.tmp / "fork", pair.log.node.signing_key)
    for number in range(entries):
        fork.append(make_entry("peer", "operator", action="other", n=number))
    fork.sign_head()
    return fork


def test_a_node_showing_two_histories_is_refused_and_logged(pair: Pair) -> None:
    grow(pair.log, 4)
    assert cosigned_checkpoint(pair.log).signatures[1:]
    seen = parse_checkpoint(submission_for(pair.log, 0).note.text)

    # The same size with another root.
    fork = fork_of(pair, seen.size)
    same = Submission(
        seen.size, (), signed_checkpoint(seen.size, fork.root(seen.size), fork.signing_key)
    )
    refused = post(pair.witness_url, same.to_text())
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["rule"] == "witness_fork"
    assert error["peer"] == "a"
    assert "two histories" in error["message"]

    # A larger tree that does not extend the one cosigned.
    for number in range(3):
        fork.append(make_entry("peer", "operator", action="more", n=number))
    head = fork.sign_head()
    proof = tuple(fork.consistency(seen.size, head.size).path)
    larger = Submission(seen.size, proof, signed_checkpoint(head.size, head.root, fork.signing_key))
    assert post(pair.witness_url, larger.to_text()).status_code == 422
    fork.close()

    evidence = [e for _, e in pair.witness.node.log.entries() if e.get("action") == "fork_refused"]
    assert [e["presented_size"] for e in evidence] == [seen.size, seen.size + 3]
    assert {e["peer"] for e in evidence} == {"a"}
    # The honest log goes on being cosigned.
    grow(pair.log, 1)
    assert cosigned_checkpoint(pair.log).signatures[1:]


def test_a_witness_pulls_a_peers_checkpoint_and_catches_a_fork_there_too(pair: Pair) -> None:
    grow(pair.log, 2)
    witness = Witness(pair.witness)
    pulled = witness.pull("a")
    assert pulled["old"] == 0
    assert pulled["size"] > 0
    grow(pair.log, 2)
    assert witness.pull("a")["old"] == pulled["size"]
    # A pulled body with another history is refused as a fork, by the same checks.
    fork = fork_of(pair, pulled["size"] + 6)
    size = fork.size
    forked = Submission(
        witness.exchange.peers.get("a").witnessed_size or 0,
        tuple(fork.consistency(witness.exchange.peers.get("a").witnessed_size or 0, size).path),
        signed_checkpoint(size, fork.root(size), fork.signing_key),
    )
    fork.close()
    with pytest.raises(ProofInvalid, match="peer a presented") as caught:
        witness.add_checkpoint(forked.to_text())
    assert caught.value.details["rule"] == "witness_fork"


def test_a_receipt_takes_its_checkpoint_signed_at_once_and_cosigned_later(pair: Pair) -> None:
    grow(pair.log, 3)
    head = pair.log.node.log.sign_head()
    receipt = {"log": {"head": {"size": head.size}}}
    grow(pair.log, 2)
    # On the answer's path: the node's own checkpoint, no peer asked.
    at_once = parse_note(witnessed_receipt(pair.log, receipt)["witnessed"]["checkpoint"])
    assert [s.name for s in at_once.signatures] == [parse_checkpoint(at_once.text).origin]
    cosign_later(pair.log)
    # Later, the peer that holds the receipt asks the log for the cosigned checkpoint.
    upgraded = upgraded_receipt(pair.witness, receipt, "a")["witnessed"]
    note = parse_note(upgraded["checkpoint"])
    assert cosigners(pair.log, note.to_text(), pair.witness)
    checkpoint = parse_checkpoint(note.text)
    proof = [bytes.fromhex(h) for h in upgraded["consistency"]]
    verify_consistency(head.size, checkpoint.size, proof, head.root, checkpoint.root)
    # A size past the log's latest head is refused, and asks no peer.
    with pytest.raises(PeerError, match="did not serve a cosigned checkpoint"):
        upgraded_receipt(pair.witness, {"log": {"head": {"size": 10**6}}}, "a")
