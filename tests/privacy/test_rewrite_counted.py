"""Bounded queries over versions that carry per-unit columns: same values, hidden columns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES, DATASET, visit_standard

from entrepot.engine import (
    HIDDEN_COLUMNS,
    UNIT_ROWS,
    DuckDBEngine,
    EngineOptions,
    write_unit_columns,
)
from entrepot.errors import PolicyViolation
from entrepot.privacy import Answer, Plan, parse_policy, plan
from entrepot.privacy.sql.rewrite import OVER

STANDARD = visit_standard()

SCHEMA = pa.schema(
    [
        ("visit_id", pa.string()),
        ("patient_id", pa.string()),
        ("visit_date", pa.date32()),
        ("district", pa.string()),
        ("sex", pa.int64()),
        ("age_band", pa.string()),
        ("diagnosis_group", pa.string()),
        ("cost", pa.float64()),
        ("duration_hours", pa.float64()),
    ]
)

rows_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 5)),  # unit; None: a row without one
        st.sampled_from(["D1", "D2", "D3", "DX"]),
        st.sampled_from([1, 2]),
        st.integers(0, 364),
        st.floats(-500, 8000, allow_nan=False),
        st.one_of(st.none(), st.floats(0, 20, allow_nan=False)),
    ),
    max_size=50,
)
KEYS = ["district", "sex", "date_trunc('quarter', visit_date) AS quarter"]
AGGREGATES = [
    "COUNT(*) AS n",
    "COUNT(DISTINCT patient_id) AS units",
    "SUM(cost) AS total",
    "AVG(cost) AS mean",
    "COUNT(duration_hours) AS timed",
    "AVG(duration_hours) AS hours",
]
FILTERS = ["", "district IN ('D1', 'D3')", "sex = 2 OR visit_date < DATE '2025-07-01'"]
queries = st.tuples(
    st.lists(st.sampled_from(range(len(KEYS))), unique=True, max_size=2),
    st.lists(st.sampled_from(AGGREGATES), unique=True, min_size=1, max_size=3),
    st.sampled_from(FILTERS),
)


def write(rows: list[tuple[Any, ...]], path: Path) -> Path:
    table = pa.Table.from_pydict(
        {
            "visit_id": [f"V{i}" for i in range(len(rows))],
            "patient_id": [None if r[0] is None else f"P-{r[0]:04d}" for r in rows],
            "visit_date": [19358 + r[3] for r in rows],  # days since 1970: 2023-01-01 + r
            "district": [r[1] for r in rows],
            "sex": [r[2] for r in rows],
            "age_band": ["18-64"] * len(rows),
            "diagnosis_group": ["A"] * len(rows),
            "cost": [r[4] for r in rows],
            "duration_hours": [r[5] for r in rows],
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return path


def counted_copy(path: Path) -> Path:
    target = path.with_name(path.stem + "_units.parquet")
    write_unit_columns(path, target, "patient_id", threads=1, memory_limit="256MB")
    return target


def sql_of(keys: list[int], aggregates: list[str], where: str) -> str:
    text = f"SELECT {', '.join([KEYS[k] for k in keys] + aggregates)} FROM {DATASET}"
    text += f" WHERE {where}" if where else ""
    text += f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    return text


def exact(
    p: Plan, path: Path, *, counted: bool, dialect: str = "duckdb"
) -> dict[tuple[str, ...], tuple[float, ...]]:
    """The exact values on DuckDB of the text ``p`` gives an engine of ``dialect``."""
    sql = sqlglot.transpile(p.sql("v", dialect, counted=counted), read=dialect, write="duckdb")[0]
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        records = session.execute(sql).to_pylist()
    names = [q.name for q in p.rewrite.quantities]
    names += [f"{q.name}_removed" for q in p.rewrite.quantities if q.removed]
    names += [OVER.name] if p.rewrite.over else []
    # a quantity missing from a group (NULL after the outer join) is zero, as release reads it
    return {
        tuple(str(r[k]) for k in p.rewrite.keys): tuple(r[n] or 0.0 for n in names) for r in records
    }


def answer(p: Plan, path: Path) -> Answer:
    with (
        DuckDBEngine(EngineOptions((path.parent,), threads=1)) as engine,
        engine.session() as session,
    ):
        session.register_parquet("v", [path])
        return p.run(session, "v")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, query=queries, k=st.integers(1, 3), cap=st.integers(1, 3))
def test_stored_unit_columns_give_exactly_the_values_counting_gives(
    tmp_path: Path,
    rows: list[tuple[Any, ...]],
    query: tuple[list[int], list[str], str],
    k: int,
    cap: int,
) -> None:
    keys, aggregates, where = query
    policy = parse_policy(
        {"epsilon": {"per_query": 1e9}, "contributions": {"rows_per_unit": k, "groups": cap}},
        STANDARD,
    )
    p = plan(sql_of(keys, aggregates, where), standard=STANDARD, policy=policy, codes=CODES)
    plain = write(rows, tmp_path / "plain.parquet")
    counted = counted_copy(plain)
    assert p.rewrite.counted
    assert p.rewrite.counted != p.rewrite.template
    old, new = exact(p, plain, counted=False), exact(p, counted, counted=True)
    # the text engines other than DuckDB get (read back into DuckDB's dialect) too
    spark = exact(p, counted, counted=True, dialect="spark")
    # a group missing from one side counts as zero (rows without a unit weigh nothing)
    zero = (0.0,) * (sum(1 + bool(q.removed) for q in p.rewrite.quantities) + p.rewrite.over)
    for other in (new, spark):
        for key in set(old) | set(other):
            pairs = zip(old.get(key, zero), other.get(key, zero), strict=True)
            assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in pairs), key
    # and through the public path, which picks the text by the view's columns
    first, second = answer(p, plain), answer(p, counted)
    for one, two in zip(first.rows, second.rows, strict=True):
        assert one.key == two.key
        for a, b, name in zip(one.values, two.values, first.aggregates, strict=True):
            if a.value is None or b.value is None:
                continue  # an average of a group its noise cannot tell from empty
            assert math.isclose(a.value, b.value, abs_tol=60 * first.scales[name] + 1e-6)


def test_a_query_without_a_filter_reads_the_stored_count_and_aggregates_no_units() -> None:
    policy = parse_policy({}, STANDARD)
    p = plan(f"SELECT COUNT(*) AS n FROM {DATASET}", standard=STANDARD, policy=policy)
    assert UNIT_ROWS in p.sql("v", counted=True)
    assert "GROUP BY" not in p.sql("v", counted=True)
    assert "__units" in p.sql("v")
    filtered = plan(
        f"SELECT COUNT(*) AS n FROM {DATASET} WHERE sex = 1", standard=STANDARD, policy=policy
    )
    # a filter changes each unit's count: the units the stored count cannot settle
    # (above the bound) are counted, over the integer key, and looked up
    assert f'"{UNIT_ROWS}" > ' in filtered.sql("v", counted=True)
    assert "LEFT JOIN __units" in filtered.sql("v", counted=True)
    assert '"patient_id"' not in filtered.sql("v", counted=True)
    # Spark would read the shared partial sums once per reference: it counts the heavy
    # units in a narrow read of their own, broadcast to the rows, and groups no rows by
    # unit and group
    spark = filtered.sql("v", "spark", counted=True)
    assert "/*+ BROADCAST(__heavy) */" in spark
    assert "OVER" not in spark
    assert "`patient_id`" not in spark


def test_a_version_with_unit_columns_is_read_through_them(tmp_path: Path) -> None:
    rows = [(i % 10, "D1", 1, i, 100.0, None) for i in range(200)]
    counted = counted_copy(write(rows, tmp_path / "plain.parquet"))
    # the same file with every unit's stored count made 100 times too large
    inflated = tmp_path / "inflated.parquet"
    duckdb.sql(
        f"COPY (SELECT * REPLACE ({UNIT_ROWS} * 100 AS {UNIT_ROWS}) FROM '{counted}') "
        f"TO '{inflated}' (FORMAT parquet)"
    )
    policy = parse_policy(
        {"epsilon": {"per_query": 1e9}, "threshold": 0, "contributions": {"rows_per_unit": 4}},
        STANDARD,
    )
    p = plan(
        f"SELECT COUNT(*) AS n FROM {DATASET}",
        standard=STANDARD,
        policy=policy,
        epsilon=1e8,
        codes=CODES,
    )
    # 10 units of 20 rows, each counting for 4 rows: 40; with counts of 2000, 0.4
    assert answer(p, counted).rows[0].values[0].value == pytest.approx(40.0, abs=1e-3)
    assert answer(p, inflated).rows[0].values[0].value == pytest.approx(0.4, abs=1e-3)


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT SUM(__entrepot_unit_rows) AS s FROM {DATASET}",
        f"SELECT AVG(cost) AS a FROM {DATASET} WHERE __entrepot_unit_rows > 1",
        f'SELECT COUNT(*) AS n FROM {DATASET} WHERE "__entrepot_unit_key" = 3',
        f"SELECT __entrepot_unit_rows, COUNT(*) AS n FROM {DATASET} GROUP BY 1",
        f"SELECT COUNT(DISTINCT __ENTREPOT_UNIT_KEY) AS n FROM {DATASET}",
        f"SELECT COUNT(*) AS n FROM {DATASET} GROUP BY __entrepot_unit_key",
    ],
)
def test_consumer_sql_cannot_reach_the_hidden_columns(sql: str) -> None:
    with pytest.raises(PolicyViolation) as refused:
        plan(sql, standard=STANDARD, policy=parse_policy({}, STANDARD), codes=CODES)
    assert refused.value.details["rule"] == "unknown_column"


def test_answers_name_no_hidden_column_and_no_unit(tmp_path: Path) -> None:
    rows = [(i % 7, ["D1", "D2", "D3"][i % 3], 1 + i % 2, i, 50.0 * i, 1.0) for i in range(90)]
    counted = counted_copy(write(rows, tmp_path / "plain.parquet"))
    sql = (
        "SELECT district, COUNT(*) AS n, COUNT(DISTINCT patient_id) AS units, AVG(cost) AS c "
        f"FROM {DATASET} GROUP BY district"
    )
    p = plan(sql, standard=STANDARD, policy=parse_policy({"threshold": 0}, STANDARD), codes=CODES)
    text = answer(p, counted).to_json().decode()
    assert "__entrepot" not in text
    assert "P-0" not in text
    assert all(column not in " ".join(p.notes) for column in HIDDEN_COLUMNS)
