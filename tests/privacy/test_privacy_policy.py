"""Policies: defaults from the standard's roles, precise errors, a lossless round trip."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_fixtures import visit_standard

from entrepot.errors import InvalidInput
from entrepot.privacy import Policy, default_policy, parse_policy
from entrepot.privacy.policy import AGGREGATES

STANDARD = visit_standard()
groupable = ["visit_date", "district", "sex", "age_band", "diagnosis_group"]
POLICY_KEYS = ["columns", "aggregates", "contributions", "threshold", "small_groups"]
POLICY_KEYS += ["mechanism", "delta", "epsilon", "latency_floor_ms", "max_groups"]


def test_defaults_come_from_the_column_roles() -> None:
    policy = default_policy(STANDARD)
    assert policy.aggregate_columns == ("cost", "duration_hours")
    assert set(policy.group_by_columns) == {
        "visit_date",
        "district",
        "sex",
        "age_band",
        "diagnosis_group",
    }
    assert "patient_id" not in policy.where_columns
    assert "cost" not in policy.where_columns
    assert policy.mechanism == "laplace"
    assert policy.aggregates == AGGREGATES


def test_a_yaml_policy_sets_every_option() -> None:
    text = """
    columns: {aggregate: [cost], where: [district], group_by: [district, visit_date]}
    aggregates: [count, avg]
    contributions: {rows_per_unit: 8, bound_epsilon: 0.2, groups: 4}
    threshold: 12.5
    small_groups: merge
    mechanism: gaussian
    delta: 1.0e-12
    epsilon: {per_query: 2, default: 0.25, dataset_cap: 40}
    latency_floor_ms: 400
    max_groups: 500
    """
    policy = parse_policy(text, STANDARD)
    assert policy == Policy(
        aggregate_columns=("cost",),
        where_columns=("district",),
        group_by_columns=("district", "visit_date"),
        aggregates=("count", "avg"),
        rows_per_unit=8,
        bound_epsilon=0.2,
        groups_per_unit=4,
        threshold=12.5,
        small_groups="merge",
        mechanism="gaussian",
        delta=1e-12,
        max_epsilon_per_query=2.0,
        default_epsilon=0.25,
        dataset_epsilon_cap=40.0,
        latency_floor_ms=400,
        max_groups=500,
    )
    assert parse_policy(policy.to_yaml(), STANDARD) == policy


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"columns": {"where": ["patient_id"]}}, "columns.where"),
        ({"columns": {"group_by": ["cost"]}}, "columns.group_by"),
        ({"columns": {"aggregate": ["district"]}}, "columns.aggregate"),
        ({"columns": {"where": ["nope"]}}, "columns.where"),
        ({"columns": {"where": "district"}}, "columns.where"),
        ({"colums": {}}, "colums"),
        ({"epsilon": {"per_query": 0}}, "epsilon.per_query"),
        ({"epsilon": {"per_query": 1, "default": 2}}, "epsilon.default"),
        ({"epsilon": {"dataset_cap": "lots"}}, "epsilon.dataset_cap"),
        ({"epsilon": {"per_qurey": 1}}, "epsilon.per_qurey"),
        ({"mechanism": "exponential"}, "mechanism"),
        ({"delta": 0.01}, "delta"),
        ({"small_groups": "hide"}, "small_groups"),
        ({"contributions": {"rows_per_group": 0}}, "contributions.rows_per_group"),
        ({"contributions": {"groups": True}}, "contributions.groups"),
        ({"threshold": -1}, "threshold"),
        ({"aggregates": ["max"]}, "aggregates"),
        ({"latency_floor_ms": 1.5}, "latency_floor_ms"),
        # numbers past what the ledger stores or the noise's scale holds as a float
        ({"contributions": {"rows_per_unit": 10**400}}, "contributions.rows_per_unit"),
        ({"contributions": {"groups": 10**10}}, "contributions.groups"),
        ({"contributions": {"bound_epsilon": 1e10}}, "contributions.bound_epsilon"),
        ({"epsilon": {"per_query": 1e10}}, "epsilon.per_query"),
        ({"epsilon": {"dataset_cap": 10**400}}, "epsilon.dataset_cap"),
        ({"threshold": 10**400}, "threshold"),
        ({"max_groups": 10**10}, "max_groups"),
        ({"latency_floor_ms": 3_600_000}, "latency_floor_ms"),
    ],
)
def test_errors_name_the_key_path_and_how_to_fix_it(document: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_policy(document, STANDARD, where="policy.yaml")
    assert error.value.details["key"] == key
    assert error.value.message.startswith(f"policy.yaml: {key}: ")
    assert error.value.hint


def test_malformed_yaml_and_non_mappings_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid YAML"):
        parse_policy("threshold: [", STANDARD)
    with pytest.raises(InvalidInput, match="mapping"):
        parse_policy("- a\n- b\n", STANDARD)
    assert parse_policy("", STANDARD) == default_policy(STANDARD)


def test_the_digest_changes_with_any_option() -> None:
    base = default_policy(STANDARD)
    assert base.digest == default_policy(STANDARD).digest
    assert base.digest != parse_policy({"threshold": 1}, STANDARD).digest


policies = st.fixed_dictionaries(
    {},
    optional={
        "columns": st.fixed_dictionaries(
            {},
            optional={
                "aggregate": st.lists(st.sampled_from(["cost", "duration_hours"]), unique=True),
                "where": st.lists(st.sampled_from(groupable), unique=True),
                "group_by": st.lists(st.sampled_from(groupable), unique=True),
            },
        ),
        "aggregates": st.lists(st.sampled_from(AGGREGATES), unique=True),
        "contributions": st.fixed_dictionaries(
            {},
            optional={
                "rows_per_unit": st.one_of(st.just("auto"), st.integers(1, 50)),
                "bound_epsilon": st.floats(0, 1),
                "groups": st.integers(1, 50),
            },
        ),
        "threshold": st.floats(0, 1e6),
        "small_groups": st.sampled_from(["suppress", "merge"]),
        "mechanism": st.sampled_from(["laplace", "gaussian"]),
        "delta": st.floats(1e-15, 1e-6),
        "latency_floor_ms": st.integers(0, 10_000),
        "max_groups": st.integers(1, 10**6),
    },
)


@settings(max_examples=200)
@given(policies)
def test_every_valid_policy_survives_a_yaml_round_trip(document: dict[str, Any]) -> None:
    policy = parse_policy(document, STANDARD)
    assert parse_policy(yaml.safe_load(policy.to_yaml()), STANDARD) == policy


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(
            ["threshold", "epsilon", "columns", "contributions", "mechanism", "delta", "x"]
        ),
        junk,
        max_size=4,
    )
)
def test_any_document_parses_or_fails_with_invalid_input_only(document: dict[str, Any]) -> None:
    try:
        parse_policy(document, STANDARD)
    except InvalidInput as error:
        assert error.hint  # noqa: PT017 - the hint is the behaviour
