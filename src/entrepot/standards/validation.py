"""Validating a provider's file against a standard, vectorized in DuckDB.

::

    with validate(Path("visits.csv"), get("health.visit"), Path("riverside.yaml")) as v:
        print(v.report.rows_invalid)
        v.write_valid(Path("visits.parquet"))
        v.write_rejected(Path("rejected.parquet"))

The file is read once: each row is numbered, mapped onto the standard's columns,
typed strictly and checked by every row rule as it is read, and only the typed values
are stored (with the texts and flags a rejected row needs); checks across rows (keys
that repeat) then run on the stored values. Nothing runs row by row in Python. The
validation owns a private DuckDB connection (not the consumer query engine) with a
memory limit, spilling to its own temporary folder, so a file larger than memory
still validates.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from entrepot.errors import InvalidInput, LimitExceeded, ValidationFailed, param
from entrepot.standards._rules import (
    SQL_TYPES,
    Check,
    Column,
    field_checks,
    quote,
    table_checks,
    typed_value,
)
from entrepot.standards._source import (
    RawFile,
    columns_excerpt,
    guess_delimiter,
    is_read_error,
    open_raw,
    read_error,
    scan,
)
from entrepot.standards.mapping import ColumnMap, Mapping, Source, load_mapping
from entrepot.standards.report import RULES, OffendingRow, Report, Violation
from entrepot.standards.schema import Standard

__all__ = ["Validation", "validate"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Types whose valid texts mostly print back as written from the typed value: their
# text is stored only when it does not (or the row is rejected).
_PRINTED_BACK = ("integer", "date")


def _text(c: Column) -> str:
    """SQL for a stored row's text as read (after the mapping)."""
    if c.field.type == "string":
        return c.value
    if c.field.type in _PRINTED_BACK:
        return f"coalesce({c.text}, CAST({c.value} AS VARCHAR))"
    return c.text


def _kept_text(c: Column, keyed: bool) -> str:
    """SQL for the text stored with a row: rejected rows need theirs, and with checks
    across rows any row may yet be rejected; a string's text is its value."""
    if not keyed:
        return f"CASE WHEN invalid THEN {c.text} END"
    if c.field.type in _PRINTED_BACK:
        differs = f"CAST({c.value} AS VARCHAR) IS DISTINCT FROM {c.text}"
        return f"CASE WHEN invalid OR {differs} THEN {c.text} END"
    return c.text


def _flag(i: int, check: Check) -> str:
    """SQL for whether a stored row breaks the ``i``-th check: a row check's flag is in
    the row's ``flags`` list (NULL on valid rows), a check across rows has a column."""
    return f"x{i}" if check.key else f"flags[{i + 1}]"


def _reasons(checks: list[Check]) -> str:
    """SQL for a row's broken rules, as ``rule:column`` texts in check order."""
    labels = ", ".join(
        f"CASE WHEN {_flag(i, c)} THEN {quote(f'{c.rule}:{c.column}')} END"
        for i, c in enumerate(checks)
    )
    return f"list_filter([{labels}], lambda r: r IS NOT NULL)" if labels else "[]::VARCHAR[]"


class Validation:
    """The outcome of :func:`validate`: the report, and the rows ready to be written.

    Holds a DuckDB connection and a temporary folder until :meth:`close` (or the end
    of a ``with`` block).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        workdir: Path,
        standard: Standard,
        columns: list[Column],
        checks: list[Check],
        report: Report,
    ) -> None:
        self._con = con
        self._workdir = workdir
        self.standard = standard
        self._columns = columns
        self._checks = checks
        self.report = report

    def _copy(self, select: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._con.execute(
            f"COPY ({select}) TO {quote(str(path))} (FORMAT parquet, COMPRESSION zstd)"
        )

    def write_valid(self, path: Path) -> int:
        """Write the valid rows, typed as the standard says, to Parquet; return their count."""
        typed = ", ".join(
            f"CAST({c.value} AS {SQL_TYPES[c.field.type]}) AS {_ident(c.field.name)}"
            for c in self._columns
        )
        self._copy(f"SELECT {typed} FROM checked WHERE NOT invalid ORDER BY line", path)
        return self.report.rows_valid

    def write_rejected(self, path: Path) -> int:
        """Write the invalid rows to Parquet: ``line``, ``reasons`` (``rule:column``) and
        every column's text as read (after the mapping); return their count."""
        texts = ", ".join(f"{_text(c)} AS {_ident(c.field.name)}" for c in self._columns)
        self._copy(
            f"SELECT line, {_reasons(self._checks)} AS reasons, {texts} "
            "FROM checked WHERE invalid ORDER BY line",
            path,
        )
        return self.report.rows_invalid

    def raise_if_invalid(self) -> None:
        """Raise ValidationFailed (with the report) when any row broke a rule."""
        if not self.report.valid:
            r = self.report
            raise ValidationFailed(
                f"{r.source}: {r.rows_invalid} of {r.rows_total} rows break {r.standard}",
                hint="fix the rows listed in the report, or fix the mapping",
                report=r.to_dict(),
            )

    def close(self) -> None:
        self._con.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Validation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _plan(raw: RawFile, standard: Standard, mapping: Mapping | None) -> dict[str, ColumnMap]:
    """How each standard column is obtained; mistakes are errors naming file and columns."""
    mapping_name = mapping.where if mapping else "the mapping"
    existing = columns_excerpt(raw.columns)
    plan: dict[str, ColumnMap] = {}
    for entry in mapping.columns if mapping else ():
        if entry.target not in standard.field_names:
            raise InvalidInput(
                f"{mapping_name}: columns.{entry.target}: {standard.name} has no column "
                f"{entry.target!r}",
                hint=f"map onto one of: {', '.join(standard.field_names)}",
            )
        kind = standard.field(entry.target).type
        if entry.date_format and kind not in ("date", "datetime"):
            raise InvalidInput(
                f"{mapping_name}: columns.{entry.target}: date_format on a {kind} column",
                hint="date_format applies to date and datetime columns only",
            )
        if entry.factor is not None and kind not in ("integer", "number"):
            raise InvalidInput(
                f"{mapping_name}: columns.{entry.target}: a unit conversion on a {kind} column",
                hint="factor and unit apply to integer and number columns only",
            )
        if entry.source is not None and entry.source not in raw.columns:
            raise InvalidInput(
                f"{mapping_name}: columns.{entry.target} reads column {entry.source!r}, which "
                f"{raw.origin} does not have; its columns are: {existing}",
                hint=_missing_hint(raw, f"fix `from: {entry.source}` in {mapping_name}"),
                column=entry.source,
            )
        plan[entry.target] = entry
    for f in standard.fields:
        if f.name in plan:
            continue
        if f.name in raw.columns:
            plan[f.name] = ColumnMap(target=f.name, source=f.name)
        elif f.required:
            raise InvalidInput(
                f"{raw.origin}: no column {f.name!r}, which {standard.name} requires; "
                f"the file's columns are: {existing}",
                hint=_missing_hint(
                    raw, f"rename the column in the file, or map it: columns: {{{f.name}: ...}}"
                ),
                column=f.name,
            )
    return plan


def _missing_hint(raw: RawFile, default: str) -> str:
    other = guess_delimiter(raw)
    if other is None:
        return default
    shown = "\\t" if other == "\t" else other
    return (
        f"the whole header was read as one column: the file looks delimited by {shown!r}; "
        f"set `delimiter: {shown!r}` under `source:` in a mapping ({param('mapping')})"
    )


def _mapped(raw: RawFile, source: str, standard: Standard, plan: dict[str, ColumnMap]) -> str:
    """SQL for the file's rows as their source ``line`` and the standard's columns of
    text ``t0, t1, ...``."""
    # A window with an empty OVER numbers the rows in file order (DuckDB guarantees
    # it); the rows themselves may then be stored in any order.
    selects = [f"row_number() OVER () + {raw.first_line - 1} AS line"]
    for i, f in enumerate(standard.fields):
        entry = plan.get(f.name)
        if entry is None:
            expression = "CAST(NULL AS VARCHAR)"
        elif entry.constant is not None:
            expression = quote(entry.constant)
        else:
            expression = _ident(str(entry.source))
            if entry.codes:
                pairs = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in entry.codes.items())
                # A constant map, not a join, so rows keep their file order; a lookup
                # costs about 0.2 s per million rows and thousand codes.
                found = f"map_extract_value(MAP {{{pairs}}}, {expression})"
                expression = f"coalesce({found}, {expression})"
        selects.append(f"{expression} AS t{i}")
    return f"SELECT {', '.join(selects)} FROM {source}"


def _ordered(checks: list[Check]) -> tuple[list[Check], list[Check]]:
    """The checks in the order of their flags ``x0, x1, ...``, as two groups: row
    checks that read no other flag, then the others (row checks that read flags, and
    checks across rows), each in the standard's order."""
    tokens = [f"{{{c.rule}:{c.column}}}" for c in checks]
    later = [c for c in checks if c.key or any(token in c.condition for token in tokens)]
    return [c for c in checks if c not in later], later


def _checked_table(
    con: duckdb.DuckDBPyConnection,
    raw: RawFile,
    mapped: str,
    columns: list[Column],
    checks: list[Check],
) -> list[Check]:
    """Read, type and check every row into table ``checked``; return the checks in the
    order of their flags (see :func:`_flag`)."""
    plain, later = _ordered(checks)
    ordered = plain + later
    flag = {f"{{{c.rule}:{c.column}}}": f"x{i}" for i, c in enumerate(ordered)}

    def resolved(condition: str) -> str:
        for token, name in flag.items():
            condition = condition.replace(token, name)
        return condition

    def flags(first: int, items: list[Check]) -> str:
        return "".join(
            f", coalesce({resolved(c.condition)}, false) AS x{first + i}"
            for i, c in enumerate(items)
            if not c.key
        )

    keyed = [(f"x{i}", c.key) for i, c in enumerate(ordered) if c.key]
    texts = ", ".join(c.text for c in columns)
    values = ", ".join(f"{typed_value(c)} AS {c.value}" for c in columns)
    invalid = " OR ".join(f"x{i}" for i, c in enumerate(ordered) if not c.key) or "false"
    # Checks across rows are flagged once every row is stored.
    pending = "".join(f", false AS {name}" for name, _ in keyed)
    stored = "".join(
        f", {_kept_text(c, bool(keyed))} AS {c.text}" for c in columns if c.field.type != "string"
    )
    # Only rejected rows keep their row checks' flags, as one list: storing a column of
    # flags per check for every row cost 0.2 CPU s per million rows and 27 checks.
    row_flags = [f"x{i}" for i, c in enumerate(ordered) if not c.key]
    listed = ", ".join(f"x{i}" if not c.key else "false" for i, c in enumerate(ordered))
    dropped = ", ".join([texts, *row_flags])
    kept = f", CASE WHEN invalid THEN [{listed}] END AS flags" if row_flags else ""
    _run(
        con,
        raw,
        f"CREATE TABLE checked AS SELECT * EXCLUDE ({dropped}){kept}{pending}{stored} FROM ("
        f"SELECT *, ({invalid}) AS invalid FROM ("
        f"SELECT *{flags(len(plain), later)} FROM ("
        f"SELECT *{flags(0, plain)} FROM ("
        f"SELECT line, {texts}, {values} FROM ({mapped})))))",
    )
    for name, key in keyed:
        _mark_repeats(con, raw, name, key)
    return ordered


def _mark_repeats(
    con: duckdb.DuckDBPyConnection, raw: RawFile, flag: str, key: tuple[str, ...]
) -> None:
    """Flag every row whose key repeats an earlier row's (all occurrences after the
    first): a hash aggregate of the repeated keys, then an update of their rows."""
    keys = ", ".join(f"{v} AS k{i}" for i, v in enumerate(key))
    present = " AND ".join(f"{v} IS NOT NULL" for v in key)
    on = " AND ".join(f"checked.{v} = repeated.k{i}" for i, v in enumerate(key))
    _run(
        con,
        raw,
        f"UPDATE checked SET {flag} = true, invalid = true FROM ("
        f"SELECT {keys}, min(line) AS first FROM checked WHERE {present} "
        f"GROUP BY ALL HAVING count(*) > 1) AS repeated "
        f"WHERE {on} AND checked.line > repeated.first",
    )


def _run(con: duckdb.DuckDBPyConnection, raw: RawFile, query: str) -> None:
    """Run a validation query; DuckDB's own failures (unreadable file, out of memory,
    disk) become ours."""
    try:
        con.execute(query)
    except duckdb.OutOfMemoryException as error:
        raise LimitExceeded(
            f"validation ran out of memory ({str(error).splitlines()[0]})",
            setting="ingest_memory_limit",
            hint="raise ENTREPOT_INGEST_MEMORY_LIMIT, or free disk space for spilling",
        ) from None
    except duckdb.Error as error:
        if is_read_error(str(error)):
            raise read_error(raw, str(error)) from None
        raise InvalidInput(
            f"the rules could not be evaluated ({str(error).splitlines()[0]})",
            hint="check the standard's constraints (patterns, bounds) and the mapping",
        ) from None


def _report(
    con: duckdb.DuckDBPyConnection,
    raw: RawFile,
    standard: Standard,
    mapping: Mapping | None,
    columns: list[Column],
    checks: list[Check],
    plan: dict[str, ColumnMap],
    report_rows: int,
) -> Report:
    counts = ", ".join(f"count_if({_flag(i, c)})" for i, c in enumerate(checks))
    # The flags are read on the rejected rows only: valid rows have none.
    totals = con.execute("SELECT count(*), count_if(invalid) FROM checked").fetchone()
    per = con.execute(f"SELECT {counts or 'NULL'} FROM checked WHERE invalid").fetchone()
    assert totals is not None
    assert per is not None
    total, invalid = totals
    per_check = [int(n or 0) for n in per] if counts else []
    order = {name: i for i, name in enumerate(standard.field_names)}
    violations = sorted(
        (Violation(c.rule, c.column, n) for c, n in zip(checks, per_check, strict=True) if n),
        key=lambda v: (order.get(v.column.split(",")[0], len(order)), RULES.index(v.rule)),
    )
    texts = ", ".join(_text(c) for c in columns)
    offending = con.execute(
        f"SELECT line, {_reasons(checks)}, {texts} "
        f"FROM checked WHERE invalid ORDER BY line LIMIT {int(report_rows)}"
    ).fetchall()
    used = {entry.source for entry in plan.values() if entry.source is not None}
    return Report(
        source=raw.origin.name,
        standard=standard.name,
        mapping=Path(mapping.where).name if mapping else None,
        rows_total=int(total),
        rows_invalid=int(invalid),
        violations=tuple(violations),
        rows=tuple(
            OffendingRow(
                line=int(r[0]),
                reasons=tuple(r[1]),
                values=dict(zip(standard.field_names, r[2:], strict=True)),
            )
            for r in offending
        ),
        ignored_columns=tuple(c for c in raw.columns if c not in used),
        columns=tuple(standard.field_names),
    )


def validate(
    source: Path,
    standard: Standard,
    mapping: Mapping | Path | None = None,
    *,
    report_rows: int = 20,
    max_bytes: int | None = None,
    memory_limit: str = "2GB",
    threads: int | None = None,
    workdir: Path | None = None,
) -> Validation:
    """Read ``source``, map it onto ``standard`` and check every rule, in DuckDB.

    ``mapping`` is a parsed :class:`Mapping`, the path of a mapping YAML file, or None
    (the file already uses the standard's column names, UTF-8, comma-delimited).
    ``report_rows`` caps the offending rows listed (counts are always complete);
    ``max_bytes`` refuses larger files (LimitExceeded); ``memory_limit`` and
    ``threads`` bound DuckDB, which spills to a temporary folder beyond the limit:
    ``workdir``, an empty private folder the caller made (a node's own, under its
    home), else a new one in the system's temporary folder; it is deleted on close.

    Raises InvalidInput (with file, line and a fix) when the file or the mapping cannot
    be read; rows that break rules do not raise: they are counted in ``report``. Close
    the returned :class:`Validation` (or use it in a ``with`` block).
    """
    if isinstance(mapping, Path):
        mapping = load_mapping(mapping)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="entrepot-validate-"))
    config: dict[str, Any] = {
        "memory_limit": memory_limit,
        "temp_directory": str(workdir / "spill"),
        "preserve_insertion_order": True,
    }
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    try:
        # Nothing watches a terminal here: drawing the bar only costs.
        con.execute("SET enable_progress_bar = false")
        raw = open_raw(source, mapping.source if mapping else Source(), workdir, max_bytes)
        plan = _plan(raw, standard, mapping)
        wanted = sorted({e.source for e in plan.values() if e.source is not None})
        columns = [
            Column(
                field=f,
                text=f"t{i}",
                value=f"v{i}",
                date_format=(plan[f.name].date_format if f.name in plan else None) or f.format,
                factor=plan[f.name].factor if f.name in plan else None,
            )
            for i, f in enumerate(standard.fields)
        ]
        checks = field_checks(columns, standard) + table_checks(columns, standard)
        mapped = _mapped(raw, scan(raw, wanted), standard, plan)
        checks = _checked_table(con, raw, mapped, columns, checks)
        report = _report(con, raw, standard, mapping, columns, checks, plan, report_rows)
    except BaseException:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Validation(con, workdir, standard, columns, checks, report)
