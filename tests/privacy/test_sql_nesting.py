"""Deeply nested SQL is refused by the ``nesting`` rule, never by a crash."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_fixtures import DATASET, visit_standard

from entrepot.errors import PolicyViolation
from entrepot.privacy import dataset_of, default_policy, plan
from entrepot.privacy.sql import RULE_NAMES, check
from entrepot.privacy.sql.rules import MAX_DEPTH, MAX_NESTING

STANDARD = visit_standard()
POLICY = default_policy(STANDARD)
HEAD = f"SELECT COUNT(*) FROM {DATASET} WHERE "

# Each shape wraps a condition (or, for subqueries, the dataset) n levels deep.
SHAPES: dict[str, Callable[[int], str]] = {
    "brackets": lambda n: HEAD + "(" * n + "sex = 1" + ")" * n,
    "nots": lambda n: HEAD + "NOT " * n + "sex = 1",
    "not_brackets": lambda n: HEAD + "NOT (" * n + "sex = 1" + ")" * n,
    "minus": lambda n: HEAD + "sex > " + "- " * n + "1",
    "calls": lambda n: HEAD + "sex = " + "abs(" * n + "1" + ")" * n,
    "cases": lambda n: HEAD + "sex = " + "CASE WHEN TRUE THEN " * n + "1" + " END" * n,
    "ands": lambda n: HEAD + " AND ".join(["sex = 1"] * n),
    "ors": lambda n: HEAD + " OR ".join(["sex = 1"] * n),
    "subqueries": lambda n: "SELECT COUNT(*) FROM " + "(SELECT * FROM " * n + DATASET + ")" * n,
}


def refusal(sql: str) -> PolicyViolation | None:
    try:
        check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    except PolicyViolation as refused:
        return refused
    return None


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(SHAPES)), st.integers(min_value=0, max_value=3000))
def test_any_nesting_depth_is_answered_or_refused_by_a_rule(shape: str, depth: int) -> None:
    sql = SHAPES[shape](depth)
    refused = refusal(sql)
    assert refused is None or refused.rule in RULE_NAMES
    try:
        dataset_of(sql)
    except PolicyViolation as early:
        assert early.rule in RULE_NAMES  # noqa: PT017 - the rule is the behaviour


@pytest.mark.parametrize(
    ("shape", "depth"),
    [("brackets", 45), ("nots", 100), ("calls", 40), ("cases", 60), ("subqueries", 100)],
)
def test_the_depths_that_crashed_the_parser_are_refused_before_it_runs(
    shape: str, depth: int
) -> None:
    for refused in (refusal(SHAPES[shape](depth)), _early(SHAPES[shape](depth))):
        assert refused is not None
        assert refused.rule == "nesting"
        assert str(MAX_NESTING) in refused.message
        assert refused.hint


def test_long_chains_of_conditions_are_refused_past_the_tree_depth() -> None:
    refused = refusal(SHAPES["ands"](1000))
    assert refused is not None
    assert refused.rule == "nesting"
    assert str(MAX_DEPTH) in refused.message
    assert refusal(SHAPES["ors"](40)) is None


def test_nesting_up_to_the_limit_is_accepted_even_on_a_deep_server_stack() -> None:
    """The limits leave room for the frames of the server that calls the checker."""
    sql = SHAPES["not_brackets"](MAX_NESTING // 2)
    assert refusal(sql) is None
    assert refusal(SHAPES["brackets"](MAX_NESTING - 1)) is None

    def at_depth(frames: int) -> int:
        if frames:
            return at_depth(frames - 1)
        planned = plan(sql, standard=STANDARD, policy=POLICY, dataset=DATASET, codes=None)
        return len(planned.groups)

    assert at_depth(300 - _stack_depth()) == 1


def _early(sql: str) -> PolicyViolation | None:
    try:
        dataset_of(sql)
    except PolicyViolation as refused:
        return refused
    return None


def _stack_depth() -> int:
    frame = sys._getframe()
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return depth
