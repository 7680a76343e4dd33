"""RFC 9162 proofs from stored subtree hashes agree with the RFC's recursive definitions."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.errors import InvalidInput, ProofInvalid
from entrepot.transparency import merkle
from entrepot.transparency.merkle import NodeLookup, leaf_hash, node_hash


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH of RFC 9162 §2.1.1, written as the RFC states it."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*subproof(m, leaves[:k], complete), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def lookup_for(leaves: list[bytes]) -> NodeLookup:
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return lambda level, index: levels[level][index]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(str(i).encode()) for i in range(n)]


@given(st.integers(1, 70))
def test_roots_and_proofs_match_the_rfc_definitions(n: int) -> None:
    leaves = _leaves(n)
    lookup = lookup_for(leaves)
    root = mth(leaves)
    assert merkle.root_of(leaves) == root
    assert merkle.range_hash(lookup, 0, n) == root
    for m in range(n):
        proof = merkle.inclusion_path(lookup, m, n)
        assert proof == path(m, leaves)
        merkle.verify_inclusion(leaves[m], m, n, proof, root)
    for m in range(1, n + 1):
        proof = merkle.consistency_path(lookup, m, n)
        assert proof == subproof(m, leaves, True)
        merkle.verify_consistency(m, n, proof, mth(leaves[:m]), root)


@settings(max_examples=60)
@given(st.integers(2, 40), st.data())
def test_any_altered_inclusion_claim_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    lookup = lookup_for(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_path(lookup, m, n)
    root = mth(leaves)
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != m))
    with pytest.raises(ProofInvalid):
        merkle.verify_inclusion(leaves[m], other, n, proof, root)
    with pytest.raises(ProofInvalid):
        merkle.verify_inclusion(leaves[other], m, n, proof, root)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[position])
        bad[bit // 8] ^= 1 << (bit % 8)
        altered = [*proof[:position], bytes(bad), *proof[position + 1 :]]
        with pytest.raises(ProofInvalid, match="inclusion proof"):
            merkle.verify_inclusion(leaves[m], m, n, altered, root)
        with pytest.raises(ProofInvalid):
            merkle.verify_inclusion(leaves[m], m, n, proof[:-1], root)
    with pytest.raises(ProofInvalid):
        merkle.verify_inclusion(leaves[m], m, n, [*proof, root], root)


@settings(max_examples=60)
@given(st.integers(2, 40), st.data())
def test_any_altered_consistency_claim_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    lookup = lookup_for(leaves)
    m = data.draw(st.integers(1, n - 1))
    proof = merkle.consistency_path(lookup, m, n)
    root1, root2 = mth(leaves[:m]), mth(leaves)
    merkle.verify_consistency(m, n, proof, root1, root2)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(m, n, proof, root1, mth(leaves[:-1]))
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(m, n, [*proof, root2], root1, root2)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(m, n, proof, root2, root1)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(m, n, proof[1:], root1, root2)


def test_verifiers_refuse_the_known_pitfalls() -> None:
    leaves = _leaves(5)
    lookup = lookup_for(leaves)
    root = mth(leaves)
    proof = merkle.inclusion_path(lookup, 2, 5)
    with pytest.raises(ProofInvalid, match="32-byte"):
        merkle.verify_inclusion(leaves[2][:31], 2, 5, proof, root)
    with pytest.raises(ProofInvalid, match="empty tree"):
        merkle.verify_consistency(0, 5, [root], merkle.EMPTY_ROOT, root)
    with pytest.raises(ProofInvalid, match="empty tree"):
        merkle.verify_consistency(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)
    with pytest.raises(InvalidInput):
        merkle.inclusion_path(lookup, 5, 5)
    with pytest.raises(InvalidInput):
        merkle.consistency_path(lookup, 0, 5)


@given(st.integers(1, 48), st.data())
def test_subtree_proofs_round_trip(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    lookup = lookup_for(leaves)
    width = 1 << data.draw(st.integers(0, max(0, (n - 1).bit_length())))
    start = data.draw(st.integers(0, (n - 1) // width)) * width
    end = data.draw(st.integers(start + 1, min(n, start + width)))
    subtree = mth(leaves[start:end])
    proof = merkle.subtree_consistency_path(lookup, start, end, n)
    merkle.verify_subtree_consistency(start, end, n, proof, subtree, mth(leaves))
    index = data.draw(st.integers(start, end - 1))
    inclusion = merkle.subtree_inclusion_path(lookup, index, start, end)
    merkle.verify_subtree_inclusion(leaves[index], index, start, end, inclusion, subtree)
    if proof:
        with pytest.raises(ProofInvalid, match="subtree proof"):
            merkle.verify_subtree_consistency(start, end, n, proof, leaves[0][::-1], mth(leaves))


def test_compact_range_reports_new_nodes_in_post_order() -> None:
    tree = merkle.CompactRange()
    leaves = _leaves(4)
    assert tree.append(leaves[0]) == [leaves[0]]
    assert tree.append(leaves[1]) == [leaves[1], node_hash(leaves[0], leaves[1])]
    tree.append(leaves[2])
    created = tree.append(leaves[3])
    assert created[-1] == mth(leaves)
    assert len(created) == 3
