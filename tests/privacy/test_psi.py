"""Private set intersection: the right pairs, nothing matchable before both blindings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrepot.errors import Conflict, InvalidInput, LimitExceeded
from entrepot.privacy import psi
from entrepot.privacy.psi import (
    BlindedBatch,
    DoublyBlindedBatch,
    Holder,
    InlineExecutor,
    Matcher,
    hash_to_group,
    intersect,
)
from entrepot.privacy.psi import _group as psi_group
from entrepot.standards.linkkeys import concept

CONCEPT = "resident-number"
canonical = concept(CONCEPT).canonicalize

# A few people, each written in several local formats, and values that are no key.
PEOPLE = [f"ZR{n:010d}" for n in (7, 42, 1234567, 99, 31337, 8)]
MALFORMED = ["", "ZR", "ZR#0000000007", None, 3.5]


@st.composite
def link_keys(draw: st.DrawFn) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(MALFORMED))
    person = draw(st.sampled_from(PEOPLE))
    style = draw(st.sampled_from(["plain", "lower", "hyphen", "spaces"]))
    return {
        "plain": person,
        "lower": person.lower(),
        "hyphen": f"{person[:2]}-{person[2:]}",
        "spaces": f" {person} ",
    }[style]


sides = st.lists(link_keys(), max_size=12)


def _plain_join(left: list[object], right: list[object]) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i, a in enumerate(left)
        for j, b in enumerate(right)
        if canonical(a) is not None and canonical(a) == canonical(b)
    }


def _tokens(batches: list[BlindedBatch] | list[DoublyBlindedBatch]) -> set[bytes]:
    return {b.tokens[i : i + 32] for b in batches for i in range(0, len(b.tokens), 32)}


@settings(max_examples=40, deadline=None)
@given(sides, sides, st.integers(1, 5))
def test_matched_pairs_are_the_plain_join_of_canonical_values(
    left: list[object], right: list[object], batch_size: int
) -> None:
    found = intersect(left, right, CONCEPT, pool=InlineExecutor(), batch_size=batch_size)
    assert set(zip(found.left.tolist(), found.right.tolist(), strict=True)) == _plain_join(
        left, right
    )
    assert len(found) == len(_plain_join(left, right))
    assert found.left_malformed == sum(canonical(v) is None for v in left)
    assert found.right_malformed == sum(canonical(v) is None for v in right)


def test_the_process_pool_gives_the_same_pairs_and_reports_progress() -> None:
    left = [f"ZR{n:010d}" for n in range(0, 300)]
    right = [f"zr-{n:010d}" for n in range(150, 600)] + ["ZR#1"]
    calls: list[tuple[int, int]] = []
    with psi.make_pool(2) as pool:
        found = intersect(
            left,
            right,
            CONCEPT,
            pool=pool,
            batch_size=64,
            progress=lambda d, t: calls.append((d, t)),
        )
    assert sorted(found.left.tolist()) == list(range(150, 300))
    assert [left[i] for i in found.left] == [right[j].upper().replace("-", "") for j in found.right]
    assert found.right_malformed == 1
    total = 2 * (len(left) + len(right))
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def _run(
    left: list[object], right: list[object]
) -> Iterator[tuple[str, str, BlindedBatch | DoublyBlindedBatch]]:
    """The protocol by hand: every message as (sender, receiver, message)."""
    with Holder(CONCEPT) as a, Holder(CONCEPT) as b:
        a_singly = list(a.blind(left))
        yield from (("a", "b", m) for m in a_singly)
        b_singly = list(b.blind(right))
        yield from (("b", "a", m) for m in b_singly)
        yield from (("b", "matcher", m) for m in b.reblind(a_singly))
        yield from (("a", "matcher", m) for m in a.reblind(b_singly))


@settings(max_examples=25, deadline=None)
@given(sides, sides)
def test_no_message_a_holder_sends_carries_the_other_holders_identifiers(
    left: list[object], right: list[object]
) -> None:
    messages = list(_run(left, right))
    values = {"a": left, "b": right}
    for sender, other in (("a", "b"), ("b", "a")):
        raw = {canonical(v) for v in values[other]} - {None}
        hashed = {hash_to_group(CONCEPT, str(v)) for v in raw}
        singly = _tokens([m for s, _, m in messages if s == other and isinstance(m, BlindedBatch)])
        for _, _, message in (m for m in messages if m[0] == sender):
            sent = _tokens([message])
            assert not sent & hashed
            assert not sent & singly
            assert not any(str(v).encode() in message.tokens for v in raw)


@settings(max_examples=25, deadline=None)
@given(sides, sides)
def test_no_token_matches_before_both_blindings(left: list[object], right: list[object]) -> None:
    messages = list(_run(left, right))
    a_singly = _tokens([m for s, r, m in messages if (s, r) == ("a", "b")])
    b_singly = _tokens([m for s, r, m in messages if (s, r) == ("b", "a")])
    doubly = _tokens([m for _, r, m in messages if r == "matcher"])
    hashed = {hash_to_group(CONCEPT, str(c)) for c in map(canonical, left + right) if c}
    assert not a_singly & (b_singly | doubly | hashed)
    assert not b_singly & (doubly | hashed)


def test_fresh_keys_make_the_tokens_of_two_joins_disjoint() -> None:
    values: list[object] = list(PEOPLE)
    first, second = list(_run(values, values)), list(_run(values, values))
    assert len(_tokens([m for *_, m in first])) == 3 * len(PEOPLE)
    assert not _tokens([m for *_, m in first]) & _tokens([m for *_, m in second])


def test_one_token_per_distinct_key_and_every_row_pair_in_the_join() -> None:
    left, right = [PEOPLE[0]] * 3 + [PEOPLE[1]], [PEOPLE[0].lower()] * 2 + [PEOPLE[2]]
    with Holder(CONCEPT) as a, Holder(CONCEPT) as b:
        a_singly = list(a.blind(left))
        assert sum(len(m) for m in a_singly) == 2
        matcher = Matcher(b.reblind(a_singly))
        found = psi.Match.concat([matcher.match(m) for m in a.reblind(b.blind(right))])
        assert len(found) == 1
        (a_count,), a_rows = a.rows(found.left)
        (b_count,), b_rows = b.rows(found.right)
    assert (a_count, sorted(a_rows.tolist()), b_count, sorted(b_rows.tolist())) == (
        3,
        [0, 1, 2],
        2,
        [0, 1],
    )
    found_rows = intersect(left, right, CONCEPT, pool=InlineExecutor())
    pairs = set(zip(found_rows.left.tolist(), found_rows.right.tolist(), strict=True))
    assert pairs == {(i, j) for i in range(3) for j in range(2)}
    assert len(Matcher([])) == 0


def test_a_holder_blinds_once_and_forgets_its_key() -> None:
    holder = Holder(CONCEPT)
    list(holder.blind(PEOPLE))
    with pytest.raises(Conflict, match="already"):
        holder.blind(PEOPLE)
    holder.forget()
    with pytest.raises(Conflict, match="forgotten"):
        holder.reblind([])


def test_a_token_that_is_no_group_element_is_refused() -> None:
    bad = BlindedBatch(handles=np.zeros(1, dtype=np.uint64), tokens=b"\xff" * 32)
    with Holder(CONCEPT) as holder, pytest.raises(InvalidInput, match="not a ristretto255"):
        list(holder.reblind([bad]))
    with pytest.raises(InvalidInput, match="handles"):
        BlindedBatch(handles=np.zeros(2, dtype=np.uint64), tokens=b"\x00" * 32)


def test_a_side_over_the_row_limit_is_refused_with_its_setting() -> None:
    with Holder(CONCEPT, max_rows=3) as holder, pytest.raises(LimitExceeded) as caught:
        holder.blind(PEOPLE)
    assert caught.value.setting == "psi_max_rows"


def test_the_public_surface_is_pinned() -> None:
    assert set(psi.__all__) == {
        "BATCH_SIZE",
        "DOMAIN",
        "MAX_ROWS",
        "TOKEN_BYTES",
        "BlindedBatch",
        "DoublyBlindedBatch",
        "Handles",
        "Holder",
        "InlineExecutor",
        "Intersection",
        "Match",
        "Matcher",
        "Progress",
        "hash_to_group",
        "intersect",
        "make_pool",
    }


class _Counting(InlineExecutor):
    """Runs tasks at once, counting the blinding tasks submitted."""

    blinds = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if fn is psi_group.blind_batch:
            _Counting.blinds += 1
        return super().submit(fn, *args, **kwargs)


def test_blinding_streams_a_few_batches_at_a_time() -> None:
    values = [f"ZR{n:010d}" for n in range(1000)]
    with Holder(CONCEPT, batch_size=10, pool=_Counting()) as holder:
        batches = holder.blind(values)
        next(batches)
        assert _Counting.blinds <= 3
        assert sum(len(b) for b in batches) == 990
