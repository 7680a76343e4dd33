"""Spark's sandbox holds against Spark's own ways out, and its queries have a time limit.

Spark starts a JVM, so these tests share one engine per module and are slow ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from entrepot.engine import Engine, EngineOptions, get
from entrepot.errors import Forbidden, LimitExceeded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vaults")


@pytest.fixture(scope="module")
def spark(folder: Path) -> Iterator[Engine]:
    options = EngineOptions((folder,), threads=1, memory_limit="512MB", timeout_s=30)
    with get("spark")(options) as opened:
        yield opened


# Spark's own ways to reach files, the JVM or settings; {out}: a folder outside the
# allowed one, {inside}: a file inside it (still only readable through a view).
SPARK_ESCAPES = [
    "SELECT * FROM parquet.`{out}/outside.parquet`",
    "SELECT * FROM parquet.`{inside}`",
    "SELECT * FROM csv.`{out}/secret.csv`",
    "SELECT * FROM text.`/etc/passwd`",
    "SELECT reflect('java.lang.System', 'getProperty', 'user.home') AS home",
    "SELECT java_method('java.lang.Runtime', 'getRuntime') AS runtime",
    "SELECT input_file_name() AS path FROM v",
    "CREATE TEMPORARY VIEW stolen USING parquet OPTIONS (path '{out}/outside.parquet')",
    "INSERT OVERWRITE DIRECTORY '{out}/written' USING parquet SELECT * FROM v",
    "CREATE TABLE kept AS SELECT * FROM v",
    "CACHE TABLE v",
    "ADD JAR '{out}/evil.jar'",
    "SET spark.sql.runSQLOnFiles = true",
    "RESET",
    "SELECT * FROM default.v",
    "SELECT * FROM range(10)",
]


@pytest.mark.parametrize("statement", SPARK_ESCAPES)
def test_every_spark_way_out_of_the_sandbox_fails(
    spark: Engine, folder: Path, tmp_path: Path, statement: str
) -> None:
    inside = folder / "inside.parquet"
    pq.write_table(pa.table({"x": pa.array([1, 2, 3], pa.int64())}), inside)
    pq.write_table(pa.table({"x": pa.array([42], pa.int64())}), tmp_path / "outside.parquet")
    (tmp_path / "secret.csv").write_text("x\n42\n")
    sql = statement.format(out=tmp_path, inside=inside)
    with spark.session() as session:
        session.register_parquet("v", [inside])
        with pytest.raises(Forbidden):
            session.execute(sql)
        assert session.execute("SELECT count(*) AS n FROM v").to_pylist() == [{"n": 3}]
    assert not (tmp_path / "written").exists()


def test_spark_itself_refuses_queries_over_files(spark: Engine, folder: Path) -> None:
    """The second lock: with the statement check out of the way, Spark's own setting
    still refuses a query that names a file instead of a view."""
    inside = folder / "direct.parquet"
    pq.write_table(pa.table({"x": pa.array([1], pa.int64())}), inside)
    session = spark.session()
    try:
        with pytest.raises(Exception, match=r"(?i)parquet|table or view"):
            session._spark.sql(f"SELECT * FROM parquet.`{inside}`").toArrow()
    finally:
        session.close()


def test_a_query_past_its_time_limit_is_stopped(folder: Path) -> None:
    big = folder / "big.parquet"
    pq.write_table(pa.table({"x": pa.array(range(3000), pa.int64())}), big)
    options = EngineOptions((folder,), threads=1, memory_limit="512MB", timeout_s=2)
    with get("spark")(options) as engine, engine.session() as session:
        session.register_parquet("v", [big])
        with pytest.raises(LimitExceeded, match="longer than 2 s"):
            session.execute("SELECT count(*) AS n FROM v a, v b, v c WHERE a.x + b.x > c.x")
