"""The single pass agrees with the rules taken one at a time, on random malformed rows.

Validation checks a row with one expression and works out which rules a rejected row
broke afterwards; it types common texts by cheap casts and fixed-width patterns by
GLOB; it flags a key equal to the previous row's as it reads, and looks for repeats
further apart only when keys do not arrive in order. Here each rule's condition runs
alone, as its own query over the typed rows, with dates typed by ``try_strptime`` and
patterns matched by ``regexp_full_match``, and every row must get the same reasons and
the same texts, keys in order or not.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrepot.standards import codelist, get, validate
from entrepot.standards._glob import as_glob
from entrepot.standards._rules import (
    Column,
    _printed_integer,
    field_checks,
    quote,
    table_checks,
    typed_value,
)

DISTRICTS = codelist("region.district")
CITIES = codelist("region.city").codes
SCHEMA: dict[str, Any] = {
    "name": "test.payment",
    "fields": [
        {"name": "id", "type": "string", "constraints": {"required": True, "pattern": "T[0-9]{3}"}},
        {"name": "person", "type": "string", "constraints": {"pattern": "[A-Z]{2}[0-9]{1,3}"}},
        {"name": "city", "type": "string", "entrepot:codelist": "region.city"},
        {
            "name": "district",
            "type": "string",
            "constraints": {"required": True},
            "entrepot:codelist": "region.district",
        },
        {"name": "sex", "type": "integer", "entrepot:codelist": "sex"},
        {"name": "channel", "type": "string", "constraints": {"enum": ["card", "qr"]}},
        {"name": "amount", "type": "number", "constraints": {"required": True, "minimum": 0}},
        {"name": "quantity", "type": "integer", "constraints": {"minimum": 1, "maximum": 99}},
        {
            "name": "day",
            "type": "date",
            "constraints": {"required": True, "minimum": "2020-01-01", "maximum": "2025-12-31"},
        },
        {"name": "paid_at", "type": "datetime", "constraints": {"maximum": "2025-12-31T23:59:59"}},
    ],
    "primaryKey": ["id"],
    "foreignKeys": [
        {
            "fields": ["district", "city"],
            "reference": {"resource": "codelist:region.district", "fields": ["code", "parent"]},
        }
    ],
}
NAMES = [f["name"] for f in SCHEMA["fields"]]
# Texts near each column's valid forms: well formed, malformed, out of range, empty.
NEAR = {
    "id": ["T001", "T002", "T003", "t001", "T01", "T0001", "T00a", "", " T001"],
    "person": ["AB1", "AB123", "ab1", "AB1234", "A1", "ÉB1", ""],
    "city": [*CITIES[:3], "999999", ""],
    "district": [*DISTRICTS.codes[:4], "000000", ""],
    "sex": ["0", "1", "2", "9", "3", "01", "+1", "1.0", " 1", "x", ""],
    "channel": ["card", "qr", "cash", "Card", ""],
    "amount": ["0", "19.90", "19.9", "-3.5", "1e3", ".5", "5.", "1,5", "inf", "nan", " 1", ""],
    "quantity": ["1", "99", "100", "0", "007", "+5", "12.5", "1e1", ""],
    "day": [
        "2021-03-01",
        "2021/03/01",
        "2021-3-01",
        "2021-03-1 ",
        "2021-02-30",
        "2019-12-31",
        "2026-01-01",
        " 2021-03-1",
        "20210301",
        "0999-01-01",
        "",
    ],
    "paid_at": [
        "2021-03-01T10:00:00",
        "2021-03-01 10:00:00",
        "2021-03-01T10:00:00Z",
        "2026-01-01T00:00:00",
        "2021-03-01T25:00:00",
        "yesterday",
        "",
    ],
}
# Any short text, to reach forms no list above thought of.
NOISE = st.text(alphabet="0123456789-/.:+eTZ AzÉ", max_size=12)


def _row() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.sampled_from(NEAR[name]), NOISE) if name != "id" else st.just("")
            for name in NAMES
        }
    )


def _write(folder: Path, rows: list[dict[str, str]]) -> Path:
    path = folder / "data.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, NAMES, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _strict(c: Column) -> str:
    """The typing rule for dates as the standard words it: strptime, ISO length."""
    if c.field.type == "date":
        parsed = f"CAST(try_strptime({c.text}, '%Y-%m-%d') AS DATE)"
        return f"CASE WHEN length({c.text}) = 10 THEN {parsed} END"
    return typed_value(c)


def _reference(path: Path, folder: Path) -> dict[int, list[str]]:
    """Reasons per line, each rule its own query over the typed rows."""
    standard = get(folder / "test.payment.json")
    columns = [
        Column(field=f, text=f"t{i}", value=f"v{i}", date_format=f.format)
        for i, f in enumerate(standard.fields)
    ]
    checks = field_checks(columns, standard) + table_checks(columns, standard)
    # Reasons list the checks that read no other check first, then the others.
    tokens = [f"{{{c.rule}:{c.column}}}" for c in checks]
    checks.sort(key=lambda c: bool(c.key) or any(t in c.condition for t in tokens))
    con = duckdb.connect()
    types = ", ".join(f"{quote(n)}: 'VARCHAR'" for n in NAMES)
    texts = ", ".join(f"{json.dumps(n)} AS t{i}" for i, n in enumerate(NAMES))
    con.execute(
        f"CREATE TABLE raw AS SELECT row_number() OVER () + 1 AS line, {texts} FROM read_csv("
        f"{quote(str(path))}, header = true, auto_detect = false, nullstr = [''], "
        f"columns = {{{types}}})"
    )
    values = ", ".join(f"{_strict(c)} AS {c.value}" for c in columns)
    con.execute(f"CREATE TABLE typed AS SELECT *, {values} FROM raw")
    conditions: dict[str, str] = {}
    reasons: dict[int, list[str]] = {}
    for check in checks:
        if check.key:
            for line in _repeated(con):
                reasons.setdefault(line, []).append(f"{check.rule}:{check.column}")
            continue
        condition = check.condition
        if check.member is not None:
            condition = condition.replace("{member}", f"({check.member})")
        for token, sql in conditions.items():
            condition = condition.replace(token, f"({sql})")
        conditions[f"{{{check.rule}:{check.column}}}"] = condition
        if check.rule == "pattern":
            pattern = str(standard.field(check.column).pattern)
            text = next(c.value for c in columns if c.field.name == check.column)
            condition = f"NOT regexp_full_match({text}, {quote(pattern)})"
        for (line,) in con.execute(f"SELECT line FROM typed WHERE {condition}").fetchall():
            reasons.setdefault(line, []).append(f"{check.rule}:{check.column}")
    return reasons


def _repeated(con: duckdb.DuckDBPyConnection) -> list[int]:
    seen: Counter[str] = Counter()
    lines = []
    for line, key in con.execute("SELECT line, v0 FROM typed ORDER BY line").fetchall():
        if key is not None:
            seen[key] += 1
            if seen[key] > 1:
                lines.append(line)
    return lines


def _raw_texts(path: Path) -> dict[int, dict[str, str | None]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            i + 2: {k: (v if v != "" else None) for k, v in row.items()}
            for i, row in enumerate(csv.DictReader(handle))
        }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_row(), min_size=1, max_size=25),
    ids=st.lists(st.sampled_from(NEAR["id"]), min_size=25, max_size=25),
    ordered=st.booleans(),
)
def test_single_pass_gives_each_row_the_reasons_of_the_rules_taken_alone(
    rows: list[dict[str, str]], ids: list[str], ordered: bool
) -> None:
    keys = ids[: len(rows)]
    if ordered:
        # Keys in order, missing ones last: the read alone finds the repeats.
        keys.sort(key=lambda key: (key == "", key))
    rows = [{**row, "id": key} for row, key in zip(rows, keys, strict=True)]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test.payment.json").write_text(json.dumps(SCHEMA))
        path = _write(folder, rows)
        expected = _reference(path, folder)
        with validate(path, get(folder / "test.payment.json"), report_rows=len(rows)) as run:
            report = run.report
            run.write_rejected(folder / "rejected.parquet")
        rejected = duckdb.sql(f"SELECT * FROM '{folder / 'rejected.parquet'}' ORDER BY line")
        got = rejected.fetchall()
        raw = _raw_texts(path)
    assert {line: list(r) for line, r, *_ in got} == expected
    assert [(r.line, list(r.reasons)) for r in report.rows] == sorted(expected.items())
    for line, _, *texts in got:
        assert dict(zip(NAMES, texts, strict=True)) == raw[line]


# A pattern built of atoms GLOB can say, and texts that nearly match it.
_ATOMS = st.sampled_from(["[0-9]", "[A-Z]", "[a-z]", "[A-Za-z]", "[0-9A-F]", "x", "Q", "7", r"\d"])
_PATTERNS = st.lists(st.tuples(_ATOMS, st.sampled_from(["", "{1}", "{2}", "{3}"])), min_size=1)


@settings(max_examples=60, deadline=None)
@given(
    parts=_PATTERNS.filter(lambda p: len(p) <= 6),
    texts=st.lists(st.text(alphabet="0123456789AFQZazx7É -", max_size=10), max_size=30),
)
def test_a_fixed_width_pattern_as_glob_matches_what_the_expression_matches(
    parts: list[tuple[str, str]], texts: list[str]
) -> None:
    pattern = "".join(atom + count for atom, count in parts)
    glob = as_glob(pattern)
    assert glob is not None
    matching = [
        "".join(
            {"[0-9]": "5", "[A-Z]": "K", "[a-z]": "k", "[A-Za-z]": "b", "[0-9A-F]": "E"}.get(
                atom, "3" if atom == r"\d" else atom
            )
            * int(count.strip("{}") or 1)
            for atom, count in parts
        )
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [(s,) for s in [*texts, *matching]])
    differ = con.execute(
        f"SELECT s FROM t WHERE (s GLOB {quote(glob)}) <> regexp_full_match(s, {quote(pattern)})"
    ).fetchall()
    assert differ == []
    assert con.execute(f"SELECT count_if(s GLOB {quote(glob)}) FROM t").fetchone() != (0,)


def test_patterns_glob_cannot_say_stay_expressions() -> None:
    for pattern in ["[A-Z0-9-]{4,12}", "a|b", ".*", "x+", "x?", "[^0-9]", "^x$", "[Z-A]", "x{0}"]:
        assert as_glob(pattern) is None, pattern


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.text(alphabet="0123456789+- x_", min_size=1, max_size=20), max_size=8),
    values=st.lists(
        st.one_of(
            st.integers(-(2**63), 2**63 - 1), st.integers(-20, 20), st.sampled_from([0, 7, -7])
        ),
        max_size=30,
    ),
)
def test_an_integer_code_list_compares_integers_where_it_compared_texts(
    codes: list[str], values: list[int]
) -> None:
    numbers = [n for code in codes if (n := _printed_integer(code)) is not None]
    if not numbers:
        return
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v BIGINT)")
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in [*values, *numbers, None]])
    texts = ", ".join(quote(code) for code in codes)
    integers = ", ".join(str(n) for n in numbers)
    differ = con.execute(
        f"SELECT v FROM t WHERE (CAST(v AS VARCHAR) IN ({texts})) "
        f"IS DISTINCT FROM (v IN ({integers}))"
    ).fetchall()
    assert differ == []
