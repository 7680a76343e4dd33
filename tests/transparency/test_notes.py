"""C2SP signed notes, checkpoints and cosignatures: the specs' example, round trips and
tampering, and consistency of checkpoints a log signs as it grows."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from entrepot.errors import ProofInvalid
from entrepot.federation.witness import Submission, parse_submission
from entrepot.transparency.merkle import (
    NodeLookup,
    consistency_path,
    leaf_hash,
    range_hash,
    root_of,
    verify_consistency,
)
from entrepot.transparency.notes import (
    COSIGNATURE,
    ED25519,
    Checkpoint,
    Note,
    NoteVerifier,
    cosign,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    sign_note,
    signed_checkpoint,
    verify_note,
)

# c2sp.org/signed-note, "Verifier keys", the example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXs"
    "YjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

KEYS = [SigningKey(bytes([n]) * 32) for n in range(1, 4)]
# Any key: its base64 in a vkey may hold a plus, the separator of the vkey's parts.
keys = st.binary(min_size=32, max_size=32).map(SigningKey)
names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="+"),
    min_size=1,
    max_size=30,
)
lines = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40).filter(
    lambda line: line.strip() == line and "\n" not in line
)
texts = st.lists(lines, min_size=1, max_size=5).map(lambda ls: "".join(x + "\n" for x in ls))


def test_the_specs_example_verifies_with_its_vkey() -> None:
    verifier = parse_vkey(SPEC_VKEY)
    assert verifier.kind == ED25519
    assert verifier.vkey() == SPEC_VKEY
    note = parse_note(SPEC_NOTE)
    assert verify_note(note, (verifier,)) == {"example.com/foo": None}
    assert note.to_text() == SPEC_NOTE
    altered = parse_note(SPEC_NOTE.replace("example message", "example massage"))
    with pytest.raises(ProofInvalid, match="does not verify"):
        verify_note(altered, (verifier,))


@given(texts, names, keys)
def test_a_signed_note_round_trips_and_verifies(text: str, name: str, key: SigningKey) -> None:
    note = Note(text, (sign_note(text, name, key),))
    parsed = parse_note(note.to_text())
    assert parsed == note
    verifier = NoteVerifier(name, ED25519, key.verify_key)
    assert verify_note(parsed, (verifier,)) == {name: None}
    assert parse_vkey(verifier.vkey()) == verifier
    cosigner = NoteVerifier(name, COSIGNATURE, key.verify_key)
    assert parse_vkey(cosigner.vkey()) == cosigner


@given(texts, names, st.integers(0, 2**63 - 1), st.sampled_from(KEYS))
def test_a_cosignature_carries_its_time_and_binds_the_text(
    text: str, name: str, time: int, key: SigningKey
) -> None:
    line = cosign(text, name, key, time)
    verifier = NoteVerifier(name, COSIGNATURE, key.verify_key)
    assert verify_note(Note(text, (line,)), (verifier,)) == {name: time}
    with pytest.raises(ProofInvalid):
        verify_note(Note(text + "x\n", (line,)), (verifier,))


@given(texts, names)
def test_signatures_of_unknown_keys_are_ignored_and_none_known_is_refused(
    text: str, name: str
) -> None:
    known, other = KEYS[0], KEYS[1]
    note = Note(text, (sign_note(text, name, other), sign_note(text, name, known)))
    assert verify_note(note, (NoteVerifier(name, ED25519, known.verify_key),)) == {name: None}
    with pytest.raises(ProofInvalid, match="no signature of a trusted key"):
        verify_note(
            Note(text, note.signatures[:1]), (NoteVerifier(name, ED25519, known.verify_key),)
        )


@pytest.mark.parametrize(
    "bad",
    [
        "no blank line\n\u2014 a AAAA\n",
        "text\n\n",
        "text\n\n\u2014 a b c\n",
        "text\n\n\u2014 a !!!!\n",
        "text\n\n\u2014 a QUFBQUFB\n".replace("QUFBQUFB", "QUFBQUFB="),
        "tab\there\n\n\u2014 a QUFBQUFB\n",
        "text\n\n\u2014 a QUFBQUFB",
        "text\n\n- a QUFBQUFB\n",
    ],
)
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(ProofInvalid):
        parse_note(bad)


@given(st.integers(0, 10**12), st.binary(min_size=32, max_size=32))
def test_a_checkpoint_round_trips(size: int, root: bytes) -> None:
    checkpoint = Checkpoint("example.com/log", size, root)
    assert parse_checkpoint(checkpoint.text()) == checkpoint
    assert checkpoint.text().split("\n")[2] == base64.b64encode(root).decode()


@pytest.mark.parametrize(
    "bad",
    [
        "o\n01\n" + "A" * 43 + "=\n",
        "o\n1\nAAAA\n",
        "o\n1\n",
        "o\n-1\n" + "A" * 43 + "=\n",
        "o\n1\n\n",
    ],
)
def test_malformed_checkpoints_are_refused(bad: str) -> None:
    with pytest.raises(ProofInvalid):
        parse_checkpoint(bad)


@given(st.data())
def test_checkpoints_a_growing_log_signs_are_consistent_and_a_rewrite_is_not(
    data: st.DataObject,
) -> None:
    leaves = [leaf_hash(bytes([n % 256, n // 256])) for n in range(data.draw(st.integers(2, 80)))]
    size2 = len(leaves)
    size1 = data.draw(st.integers(1, size2 - 1))
    lookup = _lookup(leaves)
    proof = consistency_path(lookup, size1, size2)
    key = KEYS[0]
    old = parse_checkpoint(signed_checkpoint(size1, range_hash(lookup, 0, size1), key).text)
    new = parse_checkpoint(signed_checkpoint(size2, root_of(leaves), key).text)
    verify_consistency(old.size, new.size, proof, old.root, new.root)
    # A rewritten entry below size1 is another history: no proof from old's root holds.
    position = data.draw(st.integers(0, size1 - 1))
    rewritten = list(leaves)
    rewritten[position] = leaf_hash(b"rewritten")
    other = _lookup(rewritten)
    with pytest.raises(ProofInvalid):
        verify_consistency(
            size1,
            size2,
            consistency_path(other, size1, size2),
            old.root,
            range_hash(other, 0, size2),
        )


def _lookup(leaves: list[bytes]) -> NodeLookup:
    def node(level: int, index: int) -> bytes:
        return root_of(leaves[index << level : (index + 1) << level])

    return node


@given(
    st.integers(0, 10**9),
    st.lists(st.binary(min_size=32, max_size=32), max_size=63),
    st.integers(1, 10**9),
    st.binary(min_size=32, max_size=32),
)
def test_an_add_checkpoint_body_round_trips(
    old: int, proof: list[bytes], size: int, root: bytes
) -> None:
    submission = Submission(old, tuple(proof), signed_checkpoint(size, root, KEYS[1]))
    assert parse_submission(submission.to_text()) == submission
