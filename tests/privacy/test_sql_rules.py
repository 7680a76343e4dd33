from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from privacy_fixtures import DATASET, visit_standard

from entrepot.errors import PolicyViolation
from entrepot.privacy import dataset_of, default_policy, parse_policy
from entrepot.privacy.sql import RULE_NAMES, RULES, check, rules
from entrepot.standards.schema import Standard, parse_standard

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sql"
DOCS = Path(__file__).parents[2] / "docs" / "privacy.md"


def entries(name: str, marker: str) -> list[tuple[str, str]]:
    """(label, query) pairs of a fixture file; an entry runs to the next marker line."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    parts = re.split(rf"^-- {marker}: *(\S+) *$", text, flags=re.MULTILINE)
    return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2)]


REJECTED = entries("rejected.sql", "rule")
ACCEPTED = entries("accepted.sql", "accept")
STANDARD = visit_standard()
POLICY = default_policy(STANDARD)


def documented_rules() -> list[str]:
    """The rule names of the table under "## The rules" in docs/privacy.md."""
    section = DOCS.read_text(encoding="utf-8").split("## The rules", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


def test_the_hostile_corpus_is_large_and_covers_every_checker_rule() -> None:
    assert len(REJECTED) >= 60
    # The planner's rules need a price or code lists, `sensitive` a standard with a
    # sensitive column: each has its own test.
    planner_rules = {"epsilon_cap", "max_groups", "coverage", "sensitive"}
    # The private-join rules refuse joins the single-dataset checker never reads.
    planner_rules |= {"join_condition", "link_key", "self_join", "join_where", "join_column"}
    planner_rules |= {"join_policy"}
    assert {rule for rule, _ in REJECTED} == set(documented_rules()) - planner_rules


def test_every_rule_the_checker_can_raise_is_documented_once() -> None:
    documented = documented_rules()
    assert len(documented) == len(set(documented))
    assert set(documented) == RULE_NAMES


@pytest.mark.parametrize(
    ("rule", "sql"), REJECTED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(REJECTED)]
)
def test_the_dataset_lookup_refuses_under_the_same_rule_or_names_a_dataset(
    rule: str, sql: str
) -> None:
    """What the coordinator runs before any policy: never a generic or another rule."""
    try:
        name = dataset_of(sql)
    except PolicyViolation as refused:
        assert refused.rule == rule, refused.message  # noqa: PT017 - the rule is the behaviour
        return
    assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", name)


def test_the_table_rule_fires_only_without_from() -> None:
    with pytest.raises(PolicyViolation) as refused:
        dataset_of("SELECT 1 + 1 AS two")
    assert refused.value.rule == "table"
    assert dataset_of(f"SELECT COUNT(*) FROM {DATASET.upper()}") == DATASET
    assert dataset_of("SELECT COUNT(*) FROM riverside_hospitals.inpatient_stays") == (
        "riverside_hospitals.inpatient_stays"
    )


@pytest.mark.parametrize(
    ("sql", "rule", "quoted", "renamed"),
    [
        (f"SELECT STRING_AGG(district, ',') FROM {DATASET}", "aggregate_function",
         "STRING_AGG()", "GROUP_CONCAT"),
        (f"SELECT arg_max(district, cost) FROM {DATASET}", "aggregate_function",
         "arg_max()", "ARG_MAX"),
        (f"SELECT SUM(cost::INT) FROM {DATASET}", "aggregate_argument", "'cost::INT'", "CAST"),
        (f"SELECT COUNT(*) FROM {DATASET} WHERE sex = CAST('1' AS INTEGER)", "where_expression",
         "CAST('1' AS INTEGER)", "BIGINT"),
        (f"SELECT COUNT(*) FROM {DATASET} WHERE visit_date > now()", "function", "now()",
         "CURRENT_TIMESTAMP"),
        (f"SELECT COUNT(*) FROM {DATASET} AT (VERSION => 1)", "table_modifier", "time travel",
         "HISTORICALDATA"),
        (f"SELECT COUNT(*) FROM {DATASET} CLUSTER BY district", "expression",
         "'CLUSTER BY district'", "Cluster"),
        ('SELECT COUNT(*) FROM "Riverside Hospitals".outpatient_visits', "unknown_table",
         '\'"Riverside Hospitals".outpatient_visits\'', "riverside hospitals"),
        ("SELECT COUNT(*) FROM duckdb_tables()", "system_table", "duckdb_tables()", "ANONYMOUS"),
        (f"(SELECT COUNT(*) FROM {DATASET})", "subquery", "subqueries", "SUBQUERY"),
        ("EXPLAIN SELECT 1", "statement", "not EXPLAIN", "COMMAND"),
        ("CREATE TABLE t AS SELECT 1", "statement", "not CREATE", "CREATE TABLE"),
    ],
)  # fmt: skip
def test_refusals_quote_the_query_as_written_not_as_parsed(
    sql: str, rule: str, quoted: str, renamed: str
) -> None:
    with pytest.raises(PolicyViolation) as refused:
        check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    assert refused.value.rule == rule
    assert quoted in refused.value.message
    assert renamed not in refused.value.message


@pytest.mark.parametrize(
    ("rule", "sql"), REJECTED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(REJECTED)]
)
def test_every_quoted_piece_of_a_refusal_is_the_consumers_own_text(rule: str, sql: str) -> None:
    with pytest.raises(PolicyViolation) as refused:
        check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    for piece in re.findall("'(?:[^'\\\\]|\\\\.)*'" + '|"[^"]*"', refused.value.message):
        text = ast.literal_eval(piece)  # messages quote with repr()
        assert text.lower() in sql.lower() or text in STANDARD.field_names, text


@pytest.mark.parametrize(
    ("rule", "sql"), REJECTED, ids=[f"{r}-{i}" for i, (r, _) in enumerate(REJECTED)]
)
def test_hostile_queries_are_refused_by_the_expected_rule(rule: str, sql: str) -> None:
    with pytest.raises(PolicyViolation) as refused:
        check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    assert refused.value.rule == rule, refused.value.message
    assert refused.value.hint
    assert refused.value.to_dict()["error"]["rule"] == rule


@pytest.mark.parametrize(("name", "sql"), ACCEPTED, ids=[n for n, _ in ACCEPTED])
def test_accepted_queries_pass_every_rule(name: str, sql: str) -> None:
    query = check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    assert query.aggregates
    assert query.dataset == DATASET


def test_the_issue_example_resolves_to_keys_and_aggregates() -> None:
    sql = dict(ACCEPTED)["the_issue_example"]
    query = check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    assert [k.name for k in query.keys] == ["district", "diagnosis_group"]
    assert [(a.name, a.function, a.column) for a in query.aggregates] == [
        ("visits", "count", None),
        ("avg_cost", "avg", "cost"),
    ]
    assert query.output == ("district", "diagnosis_group", "visits", "avg_cost")


def test_time_keys_carry_their_truncation_and_positional_keys_resolve() -> None:
    sql = dict(ACCEPTED)["quarter_and_dimension"]
    query = check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    assert [(k.name, k.column, k.unit) for k in query.keys] == [
        ("q", "visit_date", "quarter"),
        ("sex", "sex", None),
    ]


def test_sensitive_columns_are_refused_everywhere() -> None:
    document = {
        "fields": [
            {"name": "id", "entrepot:role": "identifier"},
            {"name": "hiv", "type": "boolean", "entrepot:role": "sensitive"},
            {"name": "region", "entrepot:role": "dimension", "constraints": {"enum": ["N", "S"]}},
        ],
        "entrepot:privacyUnit": "id",
    }
    standard: Standard = parse_standard(document, "test.sensitive")
    policy = default_policy(standard)
    for sql in (
        "SELECT COUNT(*) FROM a.b WHERE hiv = TRUE",
        "SELECT hiv, COUNT(*) FROM a.b GROUP BY hiv",
    ):
        with pytest.raises(PolicyViolation) as refused:
            check(sql, standard=standard, policy=policy, dataset="a.b")
        assert refused.value.rule == "sensitive"


def test_the_policy_narrows_what_the_roles_allow() -> None:
    narrow = parse_policy(
        {"columns": {"group_by": ["district"], "where": ["sex"]}, "aggregates": ["count"]},
        STANDARD,
    )
    cases = {
        "SELECT sex, COUNT(*) FROM riverside_hospitals.outpatient_visits GROUP BY sex": (
            "group_by_column"
        ),
        "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits WHERE district = 'D1'": (
            "where_column"
        ),
        "SELECT SUM(cost) FROM riverside_hospitals.outpatient_visits": "aggregate_function",
    }
    for sql, rule in cases.items():
        with pytest.raises(PolicyViolation) as refused:
            check(sql, standard=STANDARD, policy=narrow, dataset=DATASET)
        assert refused.value.rule == rule


def test_a_subset_of_rules_can_run_alone() -> None:
    subset = (rules.syntax, rules.comment, rules.single_statement)
    with pytest.raises(PolicyViolation) as refused:
        check("SELECT 1; SELECT 2", standard=STANDARD, policy=POLICY, dataset=DATASET, rules=subset)
    assert refused.value.rule == "single_statement"
    assert RULES[-1] is rules.allowed_nodes


def test_refusals_quote_no_data_only_the_query_and_the_standard() -> None:
    with pytest.raises(PolicyViolation) as refused:
        check(
            "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits WHERE patient_id = 'P-7'",
            standard=STANDARD,
            policy=POLICY,
            dataset=DATASET,
        )
    assert "patient_id" in refused.value.message
    assert set(refused.value.details) == {"rule"}


def test_the_normalized_text_ignores_case_and_spacing() -> None:
    a = check(
        "select COUNT(*)  from riverside_hospitals.outpatient_visits",
        standard=STANDARD,
        policy=POLICY,
        dataset=DATASET,
    )
    b = check(
        "SELECT count(*) FROM riverside_hospitals.outpatient_visits",
        standard=STANDARD,
        policy=POLICY,
        dataset=DATASET,
    )
    assert a.normalized == b.normalized


_TOKENS = [
    "SELECT", "COUNT(*)", "SUM(cost)", "AVG(cost)", "district", "patient_id", "*", ",", "FROM",
    DATASET, "WHERE", "GROUP BY", "ORDER BY", "LIMIT 1", "UNION", ";", "(", ")", "=", "'x'",
    "1", "AND", "OR", "NOT", "read_csv('/etc/passwd')", "--", "/*", "*/", "AS", "JOIN",
    "OVER ()", "date_trunc('month', visit_date)", "IN", "BETWEEN", "getenv('HOME')", "ATTACH",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=14))
def test_any_token_soup_is_either_refused_by_a_rule_or_a_clean_aggregate(tokens: list[str]) -> None:
    sql = " ".join(tokens)
    try:
        query = check(sql, standard=STANDARD, policy=POLICY, dataset=DATASET)
    except PolicyViolation as refused:
        assert refused.rule in RULE_NAMES  # noqa: PT017 - the rule is the behaviour
        return
    assert query.aggregates
    assert "patient_id" not in query.normalized.replace("count(distinct patient_id)", "")
