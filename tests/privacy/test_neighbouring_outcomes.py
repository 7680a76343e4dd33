"""Whether a query is answered, refused or fails never depends on one unit's rows.

Random queries over the checker's grammar, with literals of the right type and of
every wrong one, each run on two neighbouring datasets (one patient's rows removed),
as plain files and as versions carrying the per-unit columns a publish adds: the
outcome kind, the rule and the status must be the same. The patient is planted
alone in its cell, with values shaped like the literals a cast would need (an age
band like a date, a code like a number), as in the attacks that found engine errors
to be an exact oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES, DATASET, visit_standard

from entrepot.engine import DuckDBEngine, EngineOptions, Session, write_unit_columns
from entrepot.errors import EntrepotError
from entrepot.privacy import plan
from entrepot.privacy.bounds import Removal
from entrepot.privacy.policy import parse_policy

STANDARD = visit_standard()
POLICY = parse_policy({"threshold": 0}, STANDARD)
VICTIM = "P-VICTIM"

_ROWS = """
    SELECT 'V' || i AS visit_id, 'P-' || lpad((i % 50)::VARCHAR, 4, '0') AS patient_id,
           DATE '2025-01-01' + (i * 7 % 180)::INT AS visit_date, 'D' || (1 + i % 2) AS district,
           (1 + i % 2)::BIGINT AS sex, ['0-17', '18-64'][1 + i % 2] AS age_band,
           chr((65 + i % 3)::INT) AS diagnosis_group, (i * 37 % 6000)::DOUBLE AS cost,
           CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 15)::DOUBLE END AS duration_hours
    FROM range(300) t(i)
"""
# Alone in district D3: values a cast of the column would trip over, or not.
_VICTIM = f"""
    SELECT 'V-' || i AS visit_id, '{VICTIM}' AS patient_id,
           DATE '2025-03-14' + i::INT AS visit_date, 'D3' AS district, 2::BIGINT AS sex,
           '2025-01-01' AS age_band, '7' AS diagnosis_group, 999999.0 AS cost,
           48.0 AS duration_hours
    FROM range(3) t(i)
"""


def _write(path: Path, sql: str) -> Path:
    with duckdb.connect() as con:
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    return path


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Session]]]:
    """Per kind of file, a session of each neighbour: plain, and ``counted`` (with the
    per-unit columns a publish adds, read by the rewrites' other texts)."""
    folder = tmp_path_factory.mktemp("neighbours")
    plain = [
        _write(folder / "with.parquet", f"{_ROWS} UNION ALL {_VICTIM}"),
        _write(folder / "without.parquet", _ROWS),
    ]
    counted = [path.with_name(f"{path.stem}_counted.parquet") for path in plain]
    for source, target in zip(plain, counted, strict=True):
        write_unit_columns(source, target, "patient_id", threads=1, memory_limit="256MB")
    # Sessions of one engine, each with its own view of the same name.
    with DuckDBEngine(EngineOptions((folder,), threads=1, memory_limit="256MB")) as engine:
        sessions: dict[str, list[Session]] = {}
        for kind, files in (("plain", plain), ("counted", counted)):
            sessions[kind] = [engine.session() for _ in files]
            for session, path in zip(sessions[kind], files, strict=True):
                session.register_parquet("visits", [path])
        yield sessions
        for pair in sessions.values():
            for session in pair:
                session.close()


@pytest.fixture(scope="module")
def neighbours(versions: dict[str, list[Session]]) -> list[Session]:
    return versions["plain"]


_COLUMNS = ("district", "age_band", "diagnosis_group", "sex", "visit_date")
# Literals of every type each column could meet: right, wrong, malformed, out of range.
_LITERALS = (
    "'D3'", "'D1'", "'2025-01-01'", "'7'", "''", "'x'", "'2025-13-45'",
    "1", "2", "-1", "0", "99999999999999999999", "2.5", "1e3", "-0.0",
    "TRUE", "FALSE", "NULL",
    "DATE '2025-03-14'", "DATE '2025-01-01'", "TIMESTAMP '2025-03-14 00:00:00'",
    "TIMESTAMP '2025-03-14 10:30:00'", "CAST('2025-01-01' AS DATE)",
    "CAST('x' AS DATE)", "CAST('1' AS INTEGER)", "CAST('2025-01-01' AS TIMESTAMP)",
    "'2025-03-14T00:00:00+02:00'",
)  # fmt: skip
_OPERATORS = ("=", "<>", "<", "<=", ">", ">=")


@st.composite
def _condition(draw: st.DrawFn, depth: int = 0) -> str:
    column = draw(st.sampled_from(_COLUMNS))
    literal = st.sampled_from(_LITERALS)
    shape = draw(st.integers(0, 5 if depth < 2 else 3))
    if shape == 0:
        return f"{column} {draw(st.sampled_from(_OPERATORS))} {draw(literal)}"
    if shape == 1:
        values = draw(st.lists(literal, min_size=1, max_size=3))
        return f"{column} IN ({', '.join(values)})"
    if shape == 2:
        return f"{column} BETWEEN {draw(literal)} AND {draw(literal)}"
    if shape == 3:
        return f"{column} IS {draw(st.sampled_from(('NULL', 'NOT NULL')))}"
    left, right = draw(_condition(depth + 1)), draw(_condition(depth + 1))
    if shape == 4:
        return f"({left}) {draw(st.sampled_from(('AND', 'OR')))} ({right})"
    return f"NOT ({left})"


@st.composite
def _query(draw: st.DrawFn) -> str:
    aggregate = draw(
        st.sampled_from(
            (
                "COUNT(*)",
                "SUM(cost)",
                "AVG(cost)",
                "COUNT(DISTINCT patient_id)",
                "COUNT(*), AVG(cost)",
                "MEDIAN(cost)",
                "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY duration_hours)",
                "COUNT(*), MEDIAN(cost)",
            )
        )
    )
    key = draw(st.sampled_from(("", "district", "date_trunc('month', visit_date)", "sex")))
    where = draw(st.one_of(st.just(""), _condition()))
    select = f"{key} AS k, {aggregate}" if key else aggregate
    text = f"SELECT {select} FROM {DATASET}"
    if where:
        text += f" WHERE {where}"
    if key:
        text += " GROUP BY 1"
    return text


# A version's released bound and removed rows (the same for both neighbours: figures
# released once at publish), under which an answer may state the version's removed
# share instead of buying its own: 10 rows removed (never worth buying at R = 4) or
# 2,000 (worth it).
_RELEASES = (None, Removal(1_000.0, 10.0, 16.0), Removal(1_000.0, 2_000.0, 16.0))


def _outcome(
    sql: str, session: Session, removal: Removal | None = None, epsilon: float = 1.0
) -> tuple[Any, ...]:
    """The outcome's kind, rule and status, and for an answer what it says of itself
    beside its figures: whose removed share it gives, what that cost, its notes and
    noise scales, and how many rows it has."""
    estimate = None if removal is None else 4
    try:
        planned = plan(
            sql,
            standard=STANDARD,
            policy=POLICY,
            dataset=DATASET,
            epsilon=epsilon,
            codes=CODES,
            estimate=estimate,
            removed=removal,
        )
    except EntrepotError as refusal:
        return ("refused", str(refusal.details.get("rule", refusal.code)), refusal.status)
    try:
        answer = planned.run(session, "visits")
    except EntrepotError as failure:
        return ("failed", failure.code, failure.status)
    said = (answer.removed_of, answer.removed_budget, sorted(answer.removed), answer.notes)
    return ("answered", "", 200, *said, answer.scales, len(answer.rows))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# ε as asked: the usual, the least a query may spend, and one below it (refused).
@given(
    sql=_query(),
    removal=st.sampled_from(_RELEASES),
    epsilon=st.sampled_from((1.0, 1e-9, 1e-320)),
    kind=st.sampled_from(("plain", "counted")),
)
def test_no_outcome_depends_on_one_unit(
    versions: dict[str, list[Session]],
    sql: str,
    removal: Removal | None,
    epsilon: float,
    kind: str,
) -> None:
    with_victim, without = versions[kind]
    outcome = _outcome(sql, with_victim, removal, epsilon)
    assert outcome == _outcome(sql, without, removal, epsilon), sql
    assert outcome[0] != "failed", f"an accepted query failed on the data: {sql}"


@pytest.mark.parametrize(
    "condition",
    [
        "district = 'D3' AND age_band = CAST('2025-01-01' AS DATE)",
        "district = 'D3' AND diagnosis_group = 7",
        "district = 'D3' AND sex = '2'",
        "district = 'D3' AND visit_date = CAST('x' AS DATE)",
        "district = 'D3' AND visit_date > TIMESTAMP '2025-03-14 10:30:00'",
        "district = 'D3' AND sex = 99999999999999999999",
    ],
)
def test_literals_the_engine_would_cast_a_column_for_are_refused(
    neighbours: list[Session], condition: str
) -> None:
    sql = f"SELECT COUNT(*) FROM {DATASET} WHERE {condition}"
    assert _outcome(sql, neighbours[0]) == ("refused", "where_expression", 403)


def test_the_engine_compares_columns_only_with_constants_of_their_own_type() -> None:
    planned = plan(
        f"SELECT COUNT(*) FROM {DATASET} WHERE visit_date >= '2025-02-01' AND sex IN (1, 2) "
        "AND district <> 'D1' AND visit_date < TIMESTAMP '2025-06-01 00:00:00'",
        standard=STANDARD,
        policy=POLICY,
        dataset=DATASET,
        epsilon=1.0,
        codes=CODES,
    )
    assert planned.rewrite.where == (
        "\"visit_date\" >= CAST('2025-02-01' AS DATE) "
        'AND "sex" IN (CAST(1 AS BIGINT), CAST(2 AS BIGINT)) AND "district" <> \'D1\' '
        "AND \"visit_date\" < CAST('2025-06-01' AS DATE)"
    )
