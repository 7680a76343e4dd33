"""The private-join checker: what it accepts, and each refusal under its rule."""

# ruff: noqa: E501 - one refused query per line reads best

from __future__ import annotations

import pytest

from entrepot import standards
from entrepot.errors import PolicyViolation
from entrepot.privacy.policy import parse_policy
from entrepot.privacy.psi.query import plan_join
from entrepot.privacy.sql.join import Side, is_join, join_sources
from entrepot.standards import codelist

V = "riverside_hospitals.outpatient_visits"
T = "acme_pay.transactions"
ON = "v.patient_id = t.person_id"


def side(name: str, standard: str, join_with: list[str]) -> Side:
    std = standards.get(standard)
    ref = name.replace("_", "-").replace(".", "/")
    return Side(name, ref, std, parse_policy({"join_with": join_with}, std))


VISITS = side(V, "health.visit", ["payments.transaction"])
PAYMENTS = side(T, "payments.transaction", ["riverside-hospitals/outpatient-visits"])


def planned(sql: str, left: Side = VISITS, right: Side = PAYMENTS):  # type: ignore[no-untyped-def]
    return plan_join(sql, left, right, epsilon=0.5, codes=lambda n: codelist(n).codes)


def test_a_join_splits_into_each_holders_filter_and_the_columns_it_sends() -> None:
    plan = planned(
        f"SELECT t.district, COUNT(DISTINCT v.patient_id) AS people, SUM(t.amount) "
        f"FROM {V} v JOIN {T} t ON {ON} "
        "WHERE v.diagnosis_group = 'I' AND t.channel IN ('card') GROUP BY t.district"
    )
    visits, payments = plan.sides
    assert (visits.link, payments.link) == ("patient_id", "person_id")
    assert visits.where == "\"diagnosis_group\" = 'I'"
    assert payments.where == "\"channel\" IN ('card')"
    # Only what the answer reads crosses: no identifier, no filter column.
    assert visits.columns == ()
    assert payments.columns == ("district", "amount")
    assert plan.concept == "resident-number"
    assert plan.plan.query.output == ("district", "people", "sum_amount")
    assert plan.plan.rewrite.where == "TRUE"
    assert any("t.amount clamped" in note for note in plan.plan.notes)


def test_the_datasets_are_found_from_the_text_alone() -> None:
    sql = f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON}"
    assert is_join(sql)
    assert not is_join(f"SELECT COUNT(*) FROM {V}")
    assert join_sources(sql) == (V, T)


def checked(sql: str) -> object:
    """Both steps the coordinator takes: the datasets from the text, then the plan."""
    join_sources(sql)
    return planned(sql)


REFUSED = [
    ("join", f"SELECT COUNT(*) FROM {V} v LEFT JOIN {T} t ON {ON}"),
    ("join", f"SELECT COUNT(*) FROM {V} v FULL OUTER JOIN {T} t ON {ON}"),
    ("join", f"SELECT COUNT(*) FROM {V} v CROSS JOIN {T} t"),
    ("join", f"SELECT COUNT(*) FROM {V} v, {T} t"),
    ("join", f"SELECT COUNT(*) FROM {V} v NATURAL JOIN {T} t"),
    ("join", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON} JOIN {T} u ON v.patient_id = u.person_id"),
    ("join_condition", f"SELECT COUNT(*) FROM {V} v JOIN {T} t USING (district)"),
    ("join_condition", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON v.patient_id = v.visit_id"),
    ("join_condition", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON} AND v.district = t.district"),
    ("link_key", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON v.district = t.district"),
    ("link_key", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON v.visit_id = t.person_id"),
    ("self_join", f"SELECT COUNT(*) FROM {V} a JOIN {V} b ON a.patient_id = b.patient_id"),
    ("join_where", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON} WHERE v.district = '910101' OR t.district = '910101'"),
    ("join_column", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON} WHERE district = '910101'"),
    ("join_column", f"SELECT COUNT(*) FROM {V} x JOIN {T} x ON x.patient_id = x.person_id"),
    ("count_distinct", f"SELECT COUNT(DISTINCT t.transaction_id) FROM {V} v JOIN {T} t ON {ON}"),
    ("identifier", f"SELECT t.person_id, COUNT(*) FROM {V} v JOIN {T} t ON {ON} GROUP BY t.person_id"),
    ("where_column", f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON} WHERE t.amount > 5"),
    ("row_level", f"SELECT v.district FROM {V} v JOIN {T} t ON {ON}"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "sql"), REFUSED, ids=[r for r, _ in REFUSED])
def test_each_bad_join_is_refused_under_its_rule(rule: str, sql: str) -> None:
    with pytest.raises(PolicyViolation) as refused:
        checked(sql)
    assert refused.value.rule == rule
    assert refused.value.hint
    assert "__" not in refused.value.message


def test_a_policy_that_does_not_name_the_other_side_refuses_the_join() -> None:
    sql = f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON}"
    closed = side(T, "payments.transaction", [])
    with pytest.raises(PolicyViolation) as refused:
        planned(sql, VISITS, closed)
    assert refused.value.rule == "join_policy"
    assert "join_with" in refused.value.hint
    # By dataset name or by standard name.
    assert planned(sql, VISITS, side(T, "payments.transaction", ["health.visit"]))


def test_the_stricter_limits_of_both_policies_hold() -> None:
    strict = Side(
        T,
        "acme-pay/transactions",
        PAYMENTS.standard,
        parse_policy(
            {"join_with": ["health.visit"], "epsilon": {"per_query": 0.2}},
            PAYMENTS.standard,
        ),
    )
    sql = f"SELECT COUNT(*) FROM {V} v JOIN {T} t ON {ON}"
    with pytest.raises(PolicyViolation) as refused:
        plan_join(sql, VISITS, strict, epsilon=0.5)
    assert refused.value.rule == "epsilon_cap"
