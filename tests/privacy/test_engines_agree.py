"""Spark runs the same private queries as DuckDB: the same exact aggregates for the same
rewritten SQL, and the same answers and refusals through a node set to either engine.

Spark starts a JVM, so these tests share one engine per module and are slow ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_fixtures import CODES
from small_node import CONSUMER, POLICY, small_node
from test_rewrite_counted import STANDARD, counted_copy, queries, rows_strategy, sql_of, write

import entrepot
from entrepot import Connection
from entrepot.engine import Engine, EngineOptions, get
from entrepot.errors import PolicyViolation
from entrepot.privacy import parse_policy, plan
from entrepot.settings import Settings
from entrepot.standards import codelist

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vaults")


@pytest.fixture(scope="module")
def engines(folder: Path) -> Iterator[dict[str, Engine]]:
    options = EngineOptions((folder,), threads=1, memory_limit="512MB", timeout_s=60)
    opened = {name: get(name)(options) for name in ("duckdb", "spark")}
    yield opened
    for engine in opened.values():
        engine.close()


def _exact(
    engine: Engine, sql_for: Callable[..., str], path: Path, counted: bool
) -> list[tuple[Any, ...]]:
    with engine.session() as session:
        session.register_parquet("v", [path])
        table = session.execute(sql_for("v", session.dialect, counted=counted))
    return sorted(tuple(row.values()) for row in table.to_pylist())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        # Sums of floats may add in another order on another engine.
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_strategy, query=queries, k=st.integers(1, 3), cap=st.integers(1, 3))
def test_spark_computes_exactly_the_aggregates_duckdb_computes(
    engines: dict[str, Engine],
    folder: Path,
    rows: list[tuple[Any, ...]],
    query: tuple[list[int], list[str], str],
    k: int,
    cap: int,
) -> None:
    keys, aggregates, where = query
    policy = parse_policy(
        {"epsilon": {"per_query": 1e9}, "contributions": {"rows_per_group": k, "groups": cap}},
        STANDARD,
    )
    p = plan(sql_of(keys, aggregates, where), standard=STANDARD, policy=policy, codes=CODES)
    plain = write(rows, folder / f"plain-{os.urandom(6).hex()}.parquet")
    for path, counted in ((plain, False), (counted_copy(plain), True)):
        duck = _exact(engines["duckdb"], p.sql, path, counted)
        spark = _exact(engines["spark"], p.sql, path, counted)
        assert len(duck) == len(spark)
        for one, two in zip(duck, spark, strict=True):
            assert all(_same(a, b) for a, b in zip(one, two, strict=True)), (one, two)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # rows per unit fixed by the policy: a 400-row node's private estimate is coarse;
    # ε 10 a query, so that an answer's noise cannot hide what the engine computed
    policy = POLICY.replace("per_query: 1.0", "per_query: 10.0")
    policy += "contributions:\n  rows_per_unit: 4\n"
    return small_node(tmp_path_factory.mktemp("node") / "home", rows=400, policy=policy)


SQL = (
    "SELECT district, COUNT(*) AS visits, AVG(cost) AS mean_cost "
    "FROM riverside_hospitals.outpatient_visits WHERE sex = 1 GROUP BY district"
)
REFUSED = [
    "SELECT patient_id FROM riverside_hospitals.outpatient_visits",
    "SELECT COUNT(*) FROM riverside_hospitals.outpatient_visits, riverside_hospitals.x",
    "SELECT reflect('java.lang.System', 'getenv') FROM riverside_hospitals.outpatient_visits",
    "SELECT COUNT(*) FROM parquet.`/etc/passwd`",
]


def _connected(home: Path, engine: str) -> Connection:
    return entrepot.connect(home, consumer=CONSUMER, settings=Settings(home=home, engine=engine))


def test_a_node_on_spark_answers_a_private_query_and_refuses_what_duckdb_refuses(
    home: Path,
) -> None:
    with _connected(home, "spark") as ex:
        frame = ex.query(SQL, epsilon=10.0).to_pandas()
    assert {"district", "visits", "mean_cost"} <= set(frame.columns)
    # 400 visits in the list's first 4 districts, about half with sex 1 (186), each
    # count's noise of scale 0.94 at ε 10; the others are answered too (with noise
    # only), as on any engine
    held = frame[frame["district"].isin(codelist("region.district").codes[:4])]
    assert 120 < held["visits"].sum() < 280
    for sql in REFUSED:
        refusals = {}
        for engine in ("duckdb", "spark"):
            with _connected(home, engine) as ex, pytest.raises(PolicyViolation) as refused:
                ex.query(sql, epsilon=0.1)
            refusals[engine] = (refused.value.details.get("rule"), refused.value.message)
        assert refusals["duckdb"] == refusals["spark"], sql


def _pairs(engine: Engine, sql_for: Callable[..., str], path: Path, counted: bool) -> Any:
    """Per group, its sorted (value, weight) pairs of each quantile's measure."""
    with engine.session() as session:
        session.register_parquet("v", [path])
        table = session.execute(sql_for("v", session.dialect, counted=counted))
    listed = [name for name in table.column_names if name.startswith("__x")]
    return {
        tuple(row[k] for k in table.column_names if k not in listed): [
            sorted((pair["x"], pair["w"]) for pair in row[name] or []) for name in listed
        ]
        for row in table.to_pylist()
    }


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=rows_strategy,
    keys=st.lists(st.sampled_from(range(2)), unique=True, max_size=2),
    where=st.sampled_from(["", "sex = 1"]),
    k=st.integers(1, 3),
)
def test_spark_weights_a_quantiles_values_as_duckdb_does(
    engines: dict[str, Engine],
    folder: Path,
    rows: list[tuple[Any, ...]],
    keys: list[int],
    where: str,
    k: int,
) -> None:
    policy = parse_policy(
        {"epsilon": {"per_query": 1e9}, "contributions": {"rows_per_group": k, "groups": 1}},
        STANDARD,
    )
    sql = sql_of(keys, ["MEDIAN(cost) AS m", "QUANTILE_CONT(duration_hours, 0.9) AS d"], where)
    p = plan(sql, standard=STANDARD, policy=policy, codes=CODES)
    plain = write(rows, folder / f"plain-{os.urandom(6).hex()}.parquet")
    for path, counted in ((plain, False), (counted_copy(plain), True)):
        duck = _pairs(engines["duckdb"], p.rewrite.samples_sql, path, counted)
        spark = _pairs(engines["spark"], p.rewrite.samples_sql, path, counted)
        assert duck.keys() == spark.keys()
        for group, lists in duck.items():
            for one, two in zip(lists, spark[group], strict=True):
                assert [x for x, _ in one] == [x for x, _ in two]
                assert [w for _, w in one] == pytest.approx([w for _, w in two], rel=1e-12)
