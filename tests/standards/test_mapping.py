"""Provider mappings: parsed into typed objects, every mistake named by file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.errors import EntrepotError, InvalidInput, NotFound
from entrepot.standards import UNITS, load_mapping, parse_mapping
from entrepot.standards.mapping import ColumnMap

FIXTURES = Path(__file__).parent.parent / "fixtures" / "standards"


def test_the_documented_example_parses() -> None:
    mapping = load_mapping(FIXTURES / "riverside.yaml")
    assert mapping.standard == "health.visit"
    assert mapping.source.encoding == "utf-8-sig"
    assert mapping.source.delimiter == ";"
    visit_date = mapping.column("visit_date")
    assert visit_date is not None
    assert visit_date.date_format == "%Y年%m月%d日"
    cost = mapping.column("cost")
    assert cost is not None
    assert cost.factor == UNITS["fen_to_yuan"]
    district = mapping.column("district")
    assert district is not None
    assert district.codes["0101"] == "910101"
    sex = mapping.column("sex")
    assert sex is not None
    assert dict(sex.codes) == {"M": "1", "F": "2"}
    assert mapping.column("nothing") is None


def test_constants_and_epoch_dates() -> None:
    mapping = load_mapping(FIXTURES / "eastbank.yaml")
    channel = mapping.column("channel")
    assert channel is not None
    assert channel.constant == "card"
    assert channel.source is None
    paid_at = mapping.column("paid_at")
    assert paid_at is not None
    assert paid_at.epoch


@pytest.mark.parametrize(
    ("document", "key", "hint"),
    [
        ({"colums": {}}, "colums", "allowed keys here: standard, source, columns"),
        ({"source": {"encoding": "latin-1"}}, "source.encoding", "utf-8, utf-8-sig, gbk"),
        ({"source": {"delimiter": ";;"}}, "source.delimiter", "delimiter: ';'"),
        ({"source": {"header": "yes"}}, "source.header", "header: true"),
        ({"source": {"header": False}}, "source.columns", "columns: [a, b, c]"),
        ({"columns": {"cost": {"from": "a", "unit": "fen"}}}, "columns.cost.unit", "fen_to_yuan"),
        ({"columns": {"cost": {"from": "a", "factor": 0}}}, "columns.cost.factor", "factor: 0.01"),
        ({"columns": {"cost": {"from": "a", "constant": "1"}}}, "columns.cost", "exactly one"),
        ({"columns": {"cost": {"form": "a"}}}, "columns.cost.form", "allowed keys here"),
        (
            {"columns": {"day": {"from": "a", "date_format": "dd/mm"}}},
            "columns.day.date_format",
            "%d/%m/%Y",
        ),
        (
            {"columns": {"d": {"from": "a", "codes_file": "none.csv"}}},
            "columns.d.codes_file",
            "relative to the mapping file",
        ),
        ({"columns": ["a", "b"]}, "columns", "columns: {visit_id: VisitNo}"),
    ],
)
def test_mistakes_name_the_file_and_key(document: dict[str, Any], key: str, hint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_mapping(document, "m.yaml", base=FIXTURES)
    assert caught.value.message.startswith(f"m.yaml: {key}:")
    assert hint in caught.value.hint or hint in caught.value.message


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("columns:\n  a: [b\n  c: d\n")
    with pytest.raises(InvalidInput, match=r"bad.yaml line \d+: not valid YAML"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("text", "key", "first", "again"),
    [
        ("columns:\n  cost: {from: fee}\n  sex: gender\n  cost: {from: fee_fen}\n", "cost", 2, 4),
        ("columns:\n  d:\n    from: x\n    codes: {0101: a, 65: b}\n", "65", 4, 4),
        ("source: {delimiter: ';'}\nsource: {delimiter: ','}\n", "source", 1, 2),
    ],
)
def test_a_key_given_twice_is_refused_naming_both_lines(
    tmp_path: Path, text: str, key: str, first: int, again: int
) -> None:
    # YAML keeps the last of two equal keys: the first would be dropped without a word
    # (0101, octal, is 65 to YAML 1.1, though the code keeps its text).
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_mapping(path)
    assert caught.value.message == (
        f"{path} line {again}: key {key!r} is given twice (first on line {first})"
    )
    assert "once" in str(caught.value.hint)


def test_a_merge_key_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "merged.yaml"
    path.write_text(
        "columns:\n  d: &base {from: x, unit: fen_to_yuan}\n  cost: {<<: *base, from: fee}\n"
    )
    assert load_mapping(path).column("cost") == ColumnMap(target="cost", source="fee", factor=0.01)


def test_missing_mapping_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no mapping file"):
        load_mapping(tmp_path / "absent.yaml")


def test_codes_file_needs_its_header(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("0101,910101\n")
    with pytest.raises(InvalidInput, match="must start with the header local,standard"):
        parse_mapping({"columns": {"d": {"from": "x", "codes_file": "codes.csv"}}}, "m", tmp_path)


def test_inline_codes_win_over_the_codes_file(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("local,standard\na,1\nb,2\n")
    document = {"columns": {"d": {"from": "x", "codes_file": "codes.csv", "codes": {"b": "9"}}}}
    column = parse_mapping(document, "m", tmp_path).column("d")
    assert column is not None
    assert dict(column.codes) == {"a": "1", "b": "9"}


names = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=12)
column_specs = st.one_of(
    names,
    st.fixed_dictionaries({"from": names}),
    st.fixed_dictionaries({"constant": names}),
    st.fixed_dictionaries({"from": names, "unit": st.sampled_from(sorted(UNITS))}),
    st.fixed_dictionaries({"from": names, "date_format": st.sampled_from(["%d/%m/%Y", "epoch"])}),
    st.fixed_dictionaries({"from": names, "codes": st.dictionaries(names, names, max_size=3)}),
)


@given(
    columns=st.dictionaries(names, column_specs, max_size=6),
    delimiter=st.sampled_from([",", ";", "|", "\\t"]),
    encoding=st.sampled_from(["utf-8", "UTF8", "utf-8-sig", "gbk", "GB2312"]),
)
def test_valid_mappings_parse_to_what_they_say(
    columns: dict[str, Any], delimiter: str, encoding: str
) -> None:
    document = {"source": {"delimiter": delimiter, "encoding": encoding}, "columns": columns}
    mapping = parse_mapping(document, "m.yaml")
    assert [c.target for c in mapping.columns] == list(columns)
    assert mapping.source.delimiter == ("\t" if delimiter == "\\t" else delimiter)
    for target, spec in columns.items():
        parsed = mapping.column(target)
        assert parsed is not None
        if isinstance(spec, str):
            assert parsed.source == spec
        else:
            assert parsed.source == spec.get("from")
            assert parsed.constant == spec.get("constant")
            if "unit" in spec:
                assert parsed.factor == UNITS[spec["unit"]]


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    document=st.dictionaries(st.sampled_from(["standard", "source", "columns", "x"]), yaml_values)
)
def test_arbitrary_documents_parse_or_raise_invalid_input(document: dict[str, Any]) -> None:
    outcome: EntrepotError | None = None
    try:
        parse_mapping(document, "m.yaml")
    except EntrepotError as error:
        outcome = error
    if outcome is not None:
        assert isinstance(outcome, InvalidInput)
        assert outcome.message.startswith("m.yaml: ")
        assert outcome.hint


def test_a_folder_given_as_a_mapping_or_a_code_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot be read as a mapping"):
        load_mapping(tmp_path)
    (tmp_path / "codes").mkdir()
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  district:\n    from: district\n    codes_file: codes\n")
    with pytest.raises(InvalidInput, match=r"codes_file: .*codes cannot be read"):
        load_mapping(mapping)
