"""More hostile queries: malformed aggregates, outputs named like the answer's own
columns, repeated group keys, BETWEEN SYMMETRIC, literals too long to read and long
IN lists. Each is either refused by a named rule before any data is read, or answered
as the consumer meant it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES, DATASET, visit_standard, write_visits

from entrepot.engine import DuckDBEngine, EngineOptions, Session
from entrepot.errors import EntrepotError, PolicyViolation
from entrepot.privacy import Plan, parse_policy, plan
from entrepot.privacy.policy import Policy
from entrepot.privacy.sql import RULE_NAMES

STANDARD = visit_standard()
POLICY = parse_policy({"threshold": 0}, STANDARD)
COVERED = parse_policy(
    {"threshold": 0, "coverage": {"visit_date": {"from": "2025-01-01", "to": "2025-06-30"}}},
    STANDARD,
)


def _plan(sql: str, policy: Policy = POLICY) -> Plan:
    return plan(sql, standard=STANDARD, policy=policy, dataset=DATASET, epsilon=1.0, codes=CODES)


def _refusal(sql: str, policy: Policy = POLICY) -> PolicyViolation:
    with pytest.raises(PolicyViolation) as refused:
        _plan(sql, policy)
    return refused.value


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    folder = tmp_path_factory.mktemp("hostile")
    path = write_visits(folder / "visits.parquet", rows=400, units=60)
    with DuckDBEngine(EngineOptions((folder,), threads=1, memory_limit="256MB")) as engine:
        opened = engine.session()
        opened.register_parquet("visits", [path])
        yield opened
        opened.close()


@pytest.mark.parametrize(
    "aggregate",
    [
        "COUNT()",
        "COUNT(*, cost)",
        "COUNT(cost, duration_hours)",
        "COUNT(DISTINCT patient_id, cost)",
    ],
)
def test_an_aggregate_without_exactly_one_argument_is_refused_by_a_rule(aggregate: str) -> None:
    refused = _refusal(f"SELECT {aggregate} FROM {DATASET}")
    assert refused.rule in ("aggregate_argument", "count_distinct")
    assert refused.hint


_FUNCTIONS = ("COUNT", "SUM", "AVG", "MEDIAN", "QUANTILE_CONT", "MIN", "count", "Sum")
_ARGUMENTS = (
    "*", "cost", "DISTINCT patient_id", "DISTINCT", "0.5", "", "NULL", "district",
    "9" * 5000, "cost ORDER BY cost", "ALL cost", "(cost)", "patient_id",
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    function=st.sampled_from(_FUNCTIONS),
    arguments=st.lists(st.sampled_from(_ARGUMENTS), max_size=3),
    trailing=st.booleans(),
)
def test_any_argument_list_is_answered_or_refused_by_a_rule(
    function: str, arguments: list[str], trailing: bool
) -> None:
    listed = ", ".join(arguments) + ("," if trailing and arguments else "")
    sql = f"SELECT {function}({listed}) FROM {DATASET}"
    try:
        planned = _plan(sql)
    except PolicyViolation as refused:
        assert refused.rule in RULE_NAMES  # noqa: PT017 - the rule is the behaviour
        return
    assert len(planned.query.aggregates) == 1


@pytest.mark.parametrize(
    "name",
    ['""', '" "', "near_zero", "NEAR_ZERO", '"Near_Zero"', "visits_asked", "visits_lo", "x_hi"],
)
def test_an_output_named_like_a_column_the_answer_adds_is_refused(name: str) -> None:
    for sql in (
        f"SELECT COUNT(*) AS {name} FROM {DATASET}",
        f"SELECT district AS {name}, COUNT(*) AS visits FROM {DATASET} GROUP BY 1",
    ):
        refused = _refusal(sql)
        assert refused.rule == "output_name"


_ALIASES = ("visits", "near_zero", "visits_asked", "", "a", "a_lo", "a_asked", "cost", "district")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.sampled_from(_ALIASES), count=st.sampled_from(_ALIASES))
def test_every_output_keeps_its_own_column_in_the_answer(
    session: Session, key: str, count: str
) -> None:
    sql = (
        f'SELECT district AS "{key}", COUNT(*) AS "{count}", SUM(cost) AS total '
        f"FROM {DATASET} GROUP BY 1"
    )
    try:
        planned = _plan(sql)
    except PolicyViolation as refused:
        assert refused.rule == "output_name"  # noqa: PT017 - the rule is the behaviour
        return
    table = planned.run(session, "visits").to_arrow()
    assert len(set(table.column_names)) == len(table.column_names)
    assert table.column(key).to_pylist() == [g[0] for g in planned.groups]
    assert table.schema.field(count).type != table.schema.field("near_zero").type


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT district, COUNT(*) FROM {DATASET} GROUP BY district, district",
        f"SELECT district, COUNT(*) FROM {DATASET} GROUP BY district, 1",
        f"SELECT district, district AS d, COUNT(*) FROM {DATASET} GROUP BY district, d",
        f"SELECT date_trunc('month', visit_date) AS m, date_trunc('MONTH', visit_date) AS n, "
        f"COUNT(*) FROM {DATASET} GROUP BY m, n",
    ],
)
def test_a_group_key_given_twice_is_refused(sql: str) -> None:
    refused = _refusal(sql)
    assert refused.rule == "group_by_expression"
    assert "repeated" in str(refused)


def test_keys_of_one_column_at_two_truncations_are_still_accepted() -> None:
    planned = _plan(
        f"SELECT date_trunc('year', visit_date) AS y, date_trunc('month', visit_date) AS m, "
        f"COUNT(*) FROM {DATASET} WHERE visit_date BETWEEN '2025-01-01' AND '2025-12-31' "
        "GROUP BY y, m"
    )
    assert [k.unit for k in planned.query.keys] == ["year", "month"]


@pytest.mark.parametrize("policy", [POLICY, COVERED])
@pytest.mark.parametrize("grouped", [False, True])
def test_between_symmetric_is_refused_rather_than_read_as_an_empty_range(
    policy: Policy, grouped: bool
) -> None:
    key = "date_trunc('month', visit_date) AS m, " if grouped else ""
    sql = (
        f"SELECT {key}COUNT(*) FROM {DATASET} "
        "WHERE visit_date BETWEEN SYMMETRIC '2025-06-30' AND '2025-01-01'"
        + (" GROUP BY m" if grouped else "")
    )
    refused = _refusal(sql, policy)
    assert refused.rule == "where_expression"
    assert "BETWEEN" in (refused.hint or "")


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        (f"SELECT COUNT(*) FROM {DATASET} WHERE sex = {'9' * 5000}", "where_expression"),
        (f"SELECT COUNT(*) FROM {DATASET} WHERE sex = -{'9' * 5000}", "where_expression"),
        (f"SELECT COUNT(*) FROM {DATASET} WHERE sex IN (1, {'1' * 4301})", "where_expression"),
        (f"SELECT district, COUNT(*) FROM {DATASET} GROUP BY {'9' * 5000}", "group_by_expression"),
    ],
)
def test_whole_numbers_longer_than_python_reads_are_refused_by_a_rule(sql: str, rule: str) -> None:
    assert _refusal(sql).rule == rule


def test_a_whole_number_with_leading_zeros_still_reads_as_itself() -> None:
    planned = _plan(f"SELECT COUNT(*) FROM {DATASET} WHERE sex = {'0' * 30}2")
    assert planned.rewrite.where == '"sex" = CAST(2 AS BIGINT)'


def test_a_long_in_list_is_typed_value_by_value_in_order() -> None:
    values = [f"'X{i}'" for i in range(6000)] + ["'D2'"]
    planned = _plan(
        f"SELECT district, COUNT(*) FROM {DATASET} WHERE district IN ({', '.join(values)}) "
        "GROUP BY district"
    )
    assert planned.rewrite.where == f'"district" IN ({", ".join(values)})'
    assert planned.groups == (("D2",),)


def test_refusals_of_these_shapes_read_no_data(session: Session) -> None:
    for sql in (
        f"SELECT COUNT() FROM {DATASET}",
        f"SELECT COUNT(*) AS near_zero FROM {DATASET}",
        f"SELECT COUNT(*) FROM {DATASET} WHERE sex = {'9' * 5000}",
    ):
        with pytest.raises(EntrepotError) as refused:
            _plan(sql).run(session, "visits")
        assert refused.value.status == 403
