"""What every registered engine promises: sessions that answer in Arrow, see only their
own views, and cannot get out of the sandbox the engine was opened with."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from entrepot.engine import Engine, EngineOptions, get, names
from entrepot.errors import EntrepotError, Forbidden, NotFound
from entrepot.exchange.node import Node

# Spark starts a JVM per engine (seconds), so its run of these tests is a slow one.
ENGINES = [pytest.param(n, marks=pytest.mark.slow) if n == "spark" else n for n in names()]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, node: Node) -> Iterator[Engine]:
    options = EngineOptions(
        allowed_directories=(node.path("vaults"),),
        temp_directory=node.path("tmp") / "engine",
        threads=1,
        memory_limit="256MB",
    )
    with get(request.param)(options) as opened:
        yield opened


def _write(path: Path, values: list[int]) -> Path:
    pq.write_table(pa.table({"x": pa.array(values, pa.int64())}), path)
    return path


@pytest.fixture
def inside(node: Node) -> Path:
    return _write(node.path("vaults", "inside.parquet"), [1, 2, 3])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    (tmp_path / "secret.csv").write_text("x\n42\n")
    return _write(tmp_path / "outside.parquet", [42])


def test_a_session_registers_a_view_and_answers_in_arrow(engine: Engine, inside: Path) -> None:
    with engine.session() as session:
        session.register_parquet("v", [inside])
        assert session.columns("v") == {"x": "BIGINT"}
        result = session.execute("SELECT sum(x) AS total FROM v WHERE x > ?", [1])
    assert isinstance(result, pa.Table)
    assert result.to_pylist() == [{"total": 5}]


def test_a_file_outside_the_allowed_directories_cannot_be_registered(
    engine: Engine, outside: Path
) -> None:
    with engine.session() as session, pytest.raises(Forbidden, match="outside"):
        session.register_parquet("v", [outside])


# {db}: the node's metadata database; {out}: a folder outside the allowed ones;
# {vaults}: the allowed folder itself, which a session may read but never write.
ESCAPES = [
    "SELECT * FROM read_csv('{db}')",
    "SELECT * FROM read_csv('{out}/secret.csv')",
    "SELECT * FROM read_parquet('{out}/outside.parquet')",
    "SELECT * FROM glob('{out}/*')",
    "SELECT * FROM glob('{db}')",
    "COPY (SELECT 1) TO '{out}/copied.csv'",
    "COPY (SELECT 1) TO '{vaults}/copied.csv'",
    "ATTACH '{db}' AS stolen",
    "ATTACH ':memory:' AS shared",
    "CREATE TABLE shared AS SELECT 1",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 8",
    "SET enable_external_access = true",
    "SELECT 1; SELECT 2",
]


@pytest.mark.parametrize("statement", ESCAPES)
def test_every_way_out_of_the_sandbox_fails(
    engine: Engine, node: Node, inside: Path, outside: Path, statement: str
) -> None:
    sql = statement.format(db=node.path("node.db"), out=outside.parent, vaults=node.path("vaults"))
    with engine.session() as session:
        session.register_parquet("v", [inside])
        with pytest.raises(Forbidden):
            session.execute(sql)
        assert session.execute("SELECT count(*) AS n FROM v").to_pylist() == [{"n": 3}]
    assert not (outside.parent / "copied.csv").exists()
    assert not node.path("vaults", "copied.csv").exists()


def test_concurrent_sessions_see_only_their_own_views(engine: Engine, node: Node) -> None:
    files = [_write(node.path("vaults", f"{i}.parquet"), [i] * (i + 1)) for i in range(2)]
    both_registered = threading.Barrier(2)
    seen: dict[int, object] = {}

    def run(i: int) -> None:
        with engine.session() as session:
            session.register_parquet("v", [files[i]])
            session.register_parquet(f"only_{i}", [files[i]])
            both_registered.wait(timeout=30)
            counted = session.execute("SELECT count(*) AS n FROM v").to_pylist()
            try:
                session.execute(f"SELECT count(*) FROM only_{1 - i}")
            except EntrepotError as missing:
                seen[i] = (counted, type(missing))
            else:
                seen[i] = (counted, None)
            both_registered.wait(timeout=30)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen == {0: ([{"n": 1}], NotFound), 1: ([{"n": 2}], NotFound)}


def test_a_sessions_views_are_gone_when_it_ends(engine: Engine, inside: Path) -> None:
    with engine.session() as session:
        session.register_parquet("v", [inside])
    with engine.session() as later, pytest.raises(NotFound):
        later.execute("SELECT count(*) FROM v")


def test_a_node_opens_its_engine_once_and_removes_its_working_folder(node: Node) -> None:
    engine = node.engine
    assert node.engine is engine
    folder = engine.options.temp_directory
    assert folder is not None
    assert folder.parent == node.path("tmp")
    assert folder.stat().st_mode & 0o777 == 0o700
    node.close()
    assert not folder.exists()


def test_an_arrow_table_registered_in_a_session_is_its_own(engine: Engine) -> None:
    with engine.session() as session:
        session.register_arrow("matched", pa.table({"x": pa.array([4, 5], pa.int64())}))
        assert session.execute("SELECT sum(x) AS total FROM matched").to_pylist() == [{"total": 9}]
        with engine.session() as other, pytest.raises(NotFound):
            other.execute("SELECT count(*) FROM matched")
