"""RFC 9162 Merkle trees: hashing, inclusion and consistency proofs, verification.

Hashing (RFC 9162 §2.1.1): a leaf is ``SHA-256(0x00 ‖ data)``, an inner node
``SHA-256(0x01 ‖ left ‖ right)``, the empty tree ``SHA-256("")``; a tree of ``n``
leaves splits at ``k``, the largest power of two smaller than ``n``.

Proofs are generated from stored hashes of *perfect* subtrees (``2**level``
leaves starting at a multiple of ``2**level``), looked up through a
:data:`NodeLookup`; a hash of an imperfect right edge is folded from at most
``log2(n)`` of them, so a proof at a million entries costs a few hundred lookups
and never rehashes the leaves.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and is strict
where the pitfalls are: every hash must be 32 bytes, a proof of the wrong length
fails, a consistency check from a tree of size 0 fails, and both sizes are bound
by the final ``sn == 0`` check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from entrepot.errors import InvalidInput, ProofInvalid

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeLookup",
    "consistency_path",
    "inclusion_path",
    "leaf_hash",
    "node_hash",
    "range_hash",
    "root_of",
    "subtree_consistency_path",
    "subtree_inclusion_path",
    "verify_consistency",
    "verify_inclusion",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> hash of the perfect subtree over leaves [i * 2**level, (i + 1) * 2**level).
NodeLookup = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(lookup: NodeLookup, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)``, where ``start`` is aligned as in any RFC 9162 subtree."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return lookup(level, start >> level)
    k = _split(n)
    return node_hash(range_hash(lookup, start, start + k), range_hash(lookup, start + k, end))


def inclusion_path(lookup: NodeLookup, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, ordered from the leaf up."""
    if not 0 <= index < size:
        raise InvalidInput(
            f"entry {index} is not in a tree of size {size}",
            hint=f"choose an index from 0 to {size - 1}, or a larger tree size",
        )
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(range_hash(lookup, start + k, end))
            end = start + k
        else:
            path.append(range_hash(lookup, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(lookup: NodeLookup, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true)."""
    if not 0 < size1 <= size2:
        raise InvalidInput(
            f"no consistency proof from size {size1} to size {size2}",
            hint="the first size must be at least 1 and at most the second",
        )
    path: list[bytes] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append(range_hash(lookup, start + k, end))
            end = start + k
        else:
            path.append(range_hash(lookup, start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        path.append(range_hash(lookup, start, end))
    path.reverse()
    return path


def _need_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofInvalid(
            f"{what} is {len(value)} bytes, not a {HASH_SIZE}-byte SHA-256 hash",
            hint="the proof or head was truncated or altered",
            part=what,
        )


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofInvalid unless ``leaf`` is entry ``index`` of ``root``."""
    _need_hash(leaf, "leaf hash")
    _need_hash(root, "root hash")
    for position, item in enumerate(proof):
        _need_hash(item, f"inclusion proof[{position}]")
    if not 0 <= index < size:
        raise ProofInvalid(
            f"inclusion proof names entry {index}, outside a tree of size {size}",
            hint="the index or the tree size was altered",
            part="inclusion proof",
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise _inclusion_failed(index, size, "is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _inclusion_failed(index, size, "is shorter than the tree is deep")
    if r != root:
        raise _inclusion_failed(index, size, "does not lead to the root hash")


def _inclusion_failed(index: int, size: int, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"inclusion proof of entry {index} in the tree of size {size} {why}",
        hint="the entry, the proof or the head was altered, or they belong to different logs",
        part="inclusion proof",
    )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofInvalid unless tree ``size2`` extends tree ``size1``."""
    if size1 <= 0:
        raise _consistency_failed(size1, size2, "starts from an empty tree, which proves nothing")
    if size1 > size2:
        raise _consistency_failed(size1, size2, "goes from a larger tree to a smaller one")
    if size1 == size2:
        if proof:
            raise _consistency_failed(size1, size2, "is not empty for two trees of one size")
        if root1 != root2:
            raise _consistency_failed(size1, size2, "joins two different roots of one size")
        # Equal sizes hash nothing: the claim holds iff the roots are the same bytes
        # (the conformance vectors accept this case whatever the roots' length).
        return
    _need_hash(root1, "first root hash")
    _need_hash(root2, "second root hash")
    for position, item in enumerate(proof):
        _need_hash(item, f"consistency proof[{position}]")
    if not proof:
        raise _consistency_failed(size1, size2, "is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _consistency_failed(size1, size2, "is longer than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _consistency_failed(size1, size2, "is shorter than the trees need")
    if fr != root1:
        raise _consistency_failed(size1, size2, "does not lead to the first root hash")
    if sr != root2:
        raise _consistency_failed(size1, size2, "does not lead to the second root hash")


def _consistency_failed(size1: int, size2: int, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"consistency proof from size {size1} to size {size2} {why}",
        hint="the log was rewritten, or the proof or one of the heads was altered",
        part="consistency proof",
    )


def _valid_subtree(start: int, end: int) -> bool:
    """A subtree ``[start, end)`` is a node of some tree: start is a multiple of BIT_CEIL(size)."""
    return 0 <= start < end and start % (1 << (end - start - 1).bit_length()) == 0


def _subtree_ranges(start: int, end: int, size: int) -> tuple[list[tuple[int, int]], bool]:
    """The node ranges of a subtree consistency proof, leaf-up, and whether the subtree is a node.

    The same descent as SUBPROOF of RFC 9162 §2.1.4.1, generalised from prefixes
    ``[0, m)`` to any valid subtree ``[start, end)`` as Merkle Tree Certificates do.
    """
    ranges: list[tuple[int, int]] = []
    lo, hi, is_node = 0, size, True
    while (lo, hi) != (start, end):
        k = lo + _split(hi - lo)
        if end <= k:
            ranges.append((k, hi))
            hi = k
        elif start >= k:
            ranges.append((lo, k))
            lo = k
        else:
            # Only a prefix straddles a split; its right part is proven like RFC's "m > k".
            ranges.append((lo, k))
            lo = start = k
            is_node = False
    if not is_node:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges, is_node


def _subtree_failed(start: int, end: int, size: int, why: str) -> ProofInvalid:
    return ProofInvalid(
        f"subtree proof of entries [{start}, {end}) in the tree of size {size} {why}",
        hint="the subtree, the proof or the head was altered",
        part="subtree proof",
    )


def subtree_inclusion_path(lookup: NodeLookup, index: int, start: int, end: int) -> list[bytes]:
    """Inclusion of entry ``index`` in the subtree ``[start, end)``, leaf up."""
    if not _valid_subtree(start, end) or not start <= index < end:
        raise InvalidInput(
            f"[{start}, {end}) is not a subtree holding entry {index}",
            hint="a subtree starts at a multiple of the power of two its size rounds up to",
        )
    return inclusion_path(
        lambda level, i: lookup(level, (start >> level) + i), index - start, end - start
    )


def verify_subtree_inclusion(
    leaf: bytes, index: int, start: int, end: int, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    """Raise ProofInvalid unless ``leaf`` is entry ``index`` of the subtree ``[start, end)``."""
    if not _valid_subtree(start, end) or not start <= index < end:
        raise _subtree_failed(start, end, end, f"does not hold entry {index}")
    verify_inclusion(leaf, index - start, end - start, proof, subtree_root)


def subtree_consistency_path(lookup: NodeLookup, start: int, end: int, size: int) -> list[bytes]:
    """Proof that the subtree ``[start, end)`` is part of the tree of ``size`` entries."""
    if start == end:
        return []
    if not _valid_subtree(start, end) or end > size:
        raise InvalidInput(
            f"[{start}, {end}) is not a subtree of a tree of size {size}",
            hint="a subtree starts at a multiple of the power of two its size rounds up to",
        )
    if (start, end) == (0, size):
        return []
    ranges, _ = _subtree_ranges(start, end, size)
    return [range_hash(lookup, lo, hi) for lo, hi in ranges]


def verify_subtree_consistency(
    start: int, end: int, size: int, proof: Sequence[bytes], subtree_root: bytes, root: bytes
) -> None:
    """Raise ProofInvalid unless ``subtree_root`` hashes entries [start, end) of ``root``."""
    if start == end:
        if end > size or proof or subtree_root != EMPTY_ROOT:
            raise _subtree_failed(start, end, size, "is not the empty proof of an empty subtree")
        return
    if not _valid_subtree(start, end) or end > size:
        raise _subtree_failed(start, end, size, "names no subtree of that tree")
    if (start, end) == (0, size):
        if proof or subtree_root != root:
            raise _subtree_failed(start, end, size, "must be empty, with equal roots")
        return
    _need_hash(subtree_root, "subtree root hash")
    _need_hash(root, "root hash")
    for position, item in enumerate(proof):
        _need_hash(item, f"subtree proof[{position}]")
    ranges, is_node = _subtree_ranges(start, end, size)
    if len(proof) != len(ranges):
        raise _subtree_failed(start, end, size, f"has {len(proof)} hashes, not {len(ranges)}")
    known = dict(zip(ranges, proof, strict=True))
    if is_node:
        known[(start, end)] = subtree_root
    elif _fold(known, start, end) != subtree_root:
        raise _subtree_failed(start, end, size, "does not lead to the subtree root hash")
    if _fold(known, 0, size) != root:
        raise _subtree_failed(start, end, size, "does not lead to the root hash")


def _fold(known: dict[tuple[int, int], bytes], lo: int, hi: int) -> bytes:
    if (lo, hi) in known:
        return known[(lo, hi)]
    k = lo + _split(hi - lo)
    return node_hash(_fold(known, lo, k), _fold(known, k, hi))


class CompactRange:
    """The roots of the perfect subtrees that make up a growing tree, left to right.

    Appending a leaf merges equal-sized neighbours, so it costs O(log n) hashes in
    the worst case and O(1) on average, and reports the new nodes in post-order:
    the leaf first, then each parent it completed.
    """

    def __init__(self, size: int = 0, roots: Sequence[bytes] = ()) -> None:
        if len(roots) != size.bit_count():
            raise InvalidInput(
                f"a tree of size {size} has {size.bit_count()} perfect subtrees, not {len(roots)}",
                hint="pass the roots of the perfect subtrees, largest first",
            )
        self.size = size
        self._roots = list(roots)

    def append(self, leaf: bytes) -> list[bytes]:
        created = [leaf]
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self._roots.pop(), node)
            created.append(node)
            size >>= 1
        self._roots.append(node)
        self.size += 1
        return created

    def root(self) -> bytes:
        if not self._roots:
            return EMPTY_ROOT
        node = self._roots[-1]
        for left in reversed(self._roots[:-1]):
            node = node_hash(left, node)
        return node


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, recomputed from scratch (for checks and baselines)."""
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()
