"""Apache Spark as an engine: the same checked, rewritten SQL, for data beyond one machine.

The engine holds one Spark session (classic, on ``local[N]`` or a cluster master, or
Spark Connect at ``sc://host:port``) and gives each query a session of its own
(``newSession``): temporary views and SQL settings are per session, the cluster is
shared. The rewrite writes its SQL in DuckDB's dialect and sqlglot transpiles it to
Spark's; no privacy logic lives here.

How a session is locked to the vault (Spark has no single switch like DuckDB's
``enable_external_access``), each measure tested with the hostile statements the
DuckDB path refuses:

- Only views this session registered can be read. A statement must parse (sqlglot,
  Spark dialect) as one query whose every table reference is one of those views or a
  name the query itself defines (a CTE); anything else (a path, a catalog table, a
  table-valued function) is refused before Spark sees it. Registration itself checks
  each file lies under the allowed directories.
- Queries over files (``SELECT * FROM parquet.`/path```) are off:
  ``spark.sql.runSQLOnFiles`` is false, and a query cannot set it (only queries run).
- Functions that reach outside SQL (``reflect``, ``java_method``: any static Java
  method) or name files (``input_file_name``) are refused by name.
- No Hive metastore: the catalog is in memory, so there is no warehouse to write to.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from entrepot.engine._registry import Engine, EngineOptions, Session, register
from entrepot.errors import Forbidden, InvalidInput, LimitExceeded, NotFound

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkEngine", "SparkSqlSession"]

# Functions no query may call: they run arbitrary JVM code or name the files read.
_REFUSED_FUNCTIONS = frozenset(
    {
        "reflect",
        "java_method",
        "try_reflect",
        "input_file_name",
        "input_file_block_start",
        "input_file_block_length",
    }
)

# Spark's type names (``DataType.simpleString``) as the standards' SQL types name them.
_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}


def _memory(limit: str) -> str:
    """DuckDB's ``4GB`` as Spark's driver memory, at least the 512 MB Spark starts with."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", limit, re.IGNORECASE)
    if match is None:
        raise InvalidInput(
            f"engine memory limit {limit!r} is not a size",
            hint="write it as a number of MB or GB, e.g. 4GB",
            setting="engine_memory_limit",
        )
    number, unit = float(match.group(1)), match.group(2)[0].lower()
    megabytes = number * {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2}[unit]
    return f"{max(int(megabytes), 512)}m"


@register
class SparkEngine(Engine):
    """One Spark application for the node; each query runs in a session of its own.

    ``options.cluster`` says where: a master URL (``local[2]``, ``spark://host:7077``,
    ``k8s://…``) starts or joins a classic application, an ``sc://`` URL connects to a
    Spark Connect server. Without one, Spark runs in this process on ``local[threads]``.
    """

    name = "spark"
    dialect = "spark"

    # One Spark application per process: engines opened while it runs share it, and
    # the last one closed stops it.
    _lock = threading.Lock()
    _open = 0

    def __init__(self, options: EngineOptions) -> None:
        super().__init__(options)
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise InvalidInput(
                "the spark engine needs PySpark, which is not installed",
                hint="pip install 'entrepot[spark]' (and Java 17 or later), "
                "or set ENTREPOT_ENGINE=duckdb",
                setting="engine",
            ) from None
        self._allowed = tuple(Path(d).resolve() for d in options.allowed_directories)
        cluster = options.cluster or f"local[{options.threads}]"
        self._connect = cluster.startswith("sc://")
        builder = SparkSession.builder.appName("entrepot")
        if self._connect:
            builder = builder.remote(cluster)
        else:
            builder = builder.master(cluster).config(
                "spark.driver.memory", _memory(options.memory_limit)
            )
            if options.temp_directory is not None:
                builder = builder.config("spark.local.dir", str(options.temp_directory))
        settings = {
            "spark.sql.catalogImplementation": "in-memory",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.runSQLOnFiles": "false",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(max(2 * options.threads, 2)),
            "spark.sql.execution.arrow.pyspark.enabled": "true",
        }
        for key, value in settings.items():
            builder = builder.config(key, value)
        with SparkEngine._lock:
            self._spark: SparkSession = builder.getOrCreate()
            SparkEngine._open += 1
        if not self._connect:
            # The node logs what it needs; Spark's own INFO/WARN lines would bury it.
            self._spark.sparkContext.setLogLevel("ERROR")
        self._cluster = cluster
        self._closed = False

    def session(self) -> SparkSqlSession:
        from pyspark.sql import SparkSession

        if self._connect:
            spark = SparkSession.builder.remote(self._cluster).create()
        else:
            spark = self._spark.newSession()
        spark.conf.set("spark.sql.runSQLOnFiles", "false")
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        return SparkSqlSession(spark, self._allowed, self.options.timeout_s, connect=self._connect)

    def close(self) -> None:
        with SparkEngine._lock:
            if self._closed:
                return
            self._closed = True
            SparkEngine._open -= 1
            if SparkEngine._open == 0:
                self._spark.stop()


class SparkSqlSession(Session):
    """One Spark session of a :class:`SparkEngine`: its own temporary views."""

    dialect = "spark"

    def __init__(
        self,
        spark: SparkSession,
        allowed: tuple[Path, ...],
        timeout_s: float,
        *,
        connect: bool = False,
    ) -> None:
        self._spark = spark
        self._connect = connect
        self._allowed = allowed
        self._views: set[str] = set()
        self.timeout_s = timeout_s

    def register_parquet(self, view: str, paths: Sequence[Path]) -> None:
        files = [Path(p).resolve() for p in paths]
        for file in files:
            if not any(file.is_relative_to(d) for d in self._allowed):
                raise Forbidden(
                    f"cannot register {file} as view {view!r}: it is outside the "
                    "engine's allowed directories",
                    hint="register only files under the directories the engine was opened with",
                )
        self._spark.read.parquet(*(str(f) for f in files)).createOrReplaceTempView(view)
        self._views.add(view.lower())

    def register_arrow(self, view: str, table: pa.Table) -> None:
        # Spark 4 takes an Arrow table as it is; the view is this session's alone.
        self._spark.createDataFrame(table).createOrReplaceTempView(view)
        self._views.add(view.lower())

    def columns(self, view: str) -> dict[str, str]:
        self._known(view)
        schema = self._spark.table(view).schema
        return {f.name: self._type(f.dataType.simpleString()) for f in schema.fields}

    @staticmethod
    def _type(spark_type: str) -> str:
        if spark_type.startswith("decimal"):
            return spark_type.upper()
        return _TYPES.get(spark_type, spark_type.upper())

    def _known(self, view: str) -> None:
        if view.lower() not in self._views:
            raise NotFound(
                f"the session holds no such view: {view}",
                hint="a session sees only the views it registered itself",
            )

    def _check(self, sql: str) -> None:
        refused = Forbidden(
            "a session runs one query (SELECT) over its own views and nothing else",
            hint="statements that write, read files, call Java or set anything are refused",
        )
        try:
            statements = sqlglot.parse(sql, read="spark")
        except sqlglot.errors.SqlglotError:
            raise refused from None
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise refused
        query = statements[0]
        defined = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        for table in query.find_all(exp.Table):
            if table.args.get("db") or table.args.get("catalog"):
                raise refused
            if not isinstance(table.this, exp.Identifier):
                raise refused  # a table-valued function or a path
            name = table.name.lower()
            if name not in defined and name not in self._views:
                raise NotFound(
                    f"the session holds no such view: {table.name}",
                    hint="a session sees only the views it registered itself",
                )
        for function in query.find_all(exp.Func):
            called = function.sql_name().lower()
            if isinstance(function, exp.Anonymous):
                called = str(function.this).lower()
            if called in _REFUSED_FUNCTIONS:
                raise refused

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        self._check(sql)
        group = f"entrepot-{uuid.uuid4().hex}"
        done, expired = threading.Event(), threading.Event()

        def watch() -> None:
            # Cancelling stops only the jobs running at that moment, and a query may
            # still be planning (or start its next stage) when its time is up: cancel
            # until it returns.
            if done.wait(self.timeout_s):
                return
            expired.set()
            while not done.is_set():
                self._cancel(group)
                done.wait(0.2)

        self._label(group)
        watchdog = threading.Thread(target=watch, name=f"{group}-watchdog", daemon=True)
        watchdog.start()
        try:
            frame = self._spark.sql(sql, args=list(params) if params else None)
            return frame.toArrow()
        except Exception:
            if expired.is_set():
                raise LimitExceeded(
                    f"the query ran longer than {self.timeout_s:g} s and was stopped",
                    setting="query_timeout_s",
                    hint="simplify the query, or raise ENTREPOT_QUERY_TIMEOUT_S",
                ) from None
            raise
        finally:
            done.set()
            watchdog.join()
            self._unlabel(group)

    def _label(self, group: str) -> None:
        """Mark the jobs this thread starts next, so :meth:`_cancel` can stop them."""
        if self._connect:
            self._spark.addTag(group)
        else:
            # A job group is a property of the calling thread, inherited by the thread
            # that serves the Arrow batches; a session tag is not.
            self._spark.sparkContext.setJobGroup(group, "entrepot query", interruptOnCancel=True)

    def _cancel(self, group: str) -> None:
        if self._connect:
            self._spark.interruptTag(group)
        else:
            self._spark.sparkContext.cancelJobGroup(group)

    def _unlabel(self, group: str) -> None:
        if self._connect:
            self._spark.removeTag(group)
        else:
            # None removes the property (PySpark's stubs say str only).
            self._spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]

    def close(self) -> None:
        for view in self._views:
            self._spark.catalog.dropTempView(view)
        self._views.clear()
