"""The shipped standards and code lists, looked up by name or path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrepot import standards
from entrepot.errors import InvalidInput, NotFound
from entrepot.standards import Role


def test_at_least_the_four_standards_ship() -> None:
    assert {"health.visit", "mobility.presence", "payments.transaction", "org.registry"} <= set(
        standards.names()
    )


@pytest.mark.parametrize("name", standards.names())
def test_every_shipped_standard_uses_roles_sensibly(name: str) -> None:
    standard = standards.get(name)
    assert standard.name == name
    assert standard.privacy_unit is not None
    assert standard.field(standard.privacy_unit).role is Role.IDENTIFIER
    for field in standard.with_role(Role.DIMENSION):
        assert field.codelist is not None or field.enum is not None, field.name
    for field in standard.with_role(Role.MEASURE):
        assert field.bounds is not None, field.name
        assert field.bounds[0] < field.bounds[1], field.name
    assert standard.primary_key


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        standards.get("health.vist")
    assert "health.visit" in caught.value.hint


def test_a_table_schema_file_is_a_standard(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"fields": [{"name": "x", "type": "integer"}]}))
    standard = standards.get(str(path))
    assert standard.name == "mine"
    assert standard.field("x").type == "integer"
    assert standards.get(path) == standard


def test_a_broken_schema_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match=r"broken\.json"):
        standards.get(path)


def test_unknown_code_list_in_a_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    field = {"name": "x", "entrepot:role": "dimension", "entrepot:codelist": "nope"}
    path.write_text(json.dumps({"fields": [field]}))
    with pytest.raises(InvalidInput, match="unknown code list 'nope'") as caught:
        standards.get(path)
    assert "region.district" in caught.value.hint


def test_region_hierarchy_is_three_levels_linked_by_parents() -> None:
    provinces = standards.codelist("region.province")
    cities = standards.codelist("region.city")
    districts = standards.codelist("region.district")
    assert len(provinces) >= 3
    assert len(cities) >= 3 * 4
    assert len(districts) >= 3 * 4 * 5
    assert all(cities.parent(c) in provinces for c in cities.codes)
    assert all(districts.parent(d) in cities for d in districts.codes)
    assert all(provinces.parent(p) is None for p in provinces.codes)


def test_sex_follows_iso_5218() -> None:
    sex = standards.codelist("sex")
    assert sex.codes == ("0", "1", "2", "9")
    assert sex.label("2") == "Female"


def test_unknown_code_and_list_are_not_found() -> None:
    with pytest.raises(NotFound, match="no code list named 'colour'"):
        standards.codelist("colour")
    with pytest.raises(NotFound, match="'7' is not in code list sex"):
        standards.codelist("sex").label("7")


def test_every_dimension_code_list_ships() -> None:
    for name in standards.names():
        for field in standards.get(name).fields:
            if field.codelist:
                assert len(standards.codelist(field.codelist)) > 0


def test_summary_describes_columns_for_people_and_scripts() -> None:
    summary = standards.get("mobility.presence").summary()
    assert summary["foreign_keys"] == [
        {
            "fields": ["district", "city"],
            "codelist": "region.district",
            "columns": ["code", "parent"],
        }
    ]
    dwell = next(f for f in summary["fields"] if f["name"] == "dwell_minutes")
    assert dwell["bounds"] == [0.0, 60.0]
    assert dwell["constraints"] == {"required": True, "minimum": 1, "maximum": 60}


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"type": "date", "constraints": {"minimum": "01/02/2000"}}, "does not fit type date"),
        ({"type": "integer", "constraints": {"maximum": "ten"}}, "does not fit type integer"),
        ({"type": "string", "constraints": {"minimum": "a"}}, "does not fit type string"),
        ({"type": "integer", "constraints": {"pattern": "[0-9]+"}}, "string columns only"),
        ({"type": "string", "constraints": {"pattern": "([a-z]"}}, "not a regular expression"),
        ({"type": "integer", "constraints": {"enum": ["a"]}}, "enum values must be integers"),
    ],
)
def test_constraints_that_cannot_apply_are_refused(field: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        standards.parse_standard({"fields": [{"name": "x", **field}]}, "s.json")


@pytest.mark.parametrize("key", ["name", "title", "description"])
@pytest.mark.parametrize("value", [{"a": 1}, ["x"], 7, True])
def test_a_name_title_or_description_that_is_not_text_is_refused(key: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=f"{key} must be text"):
        standards.parse_standard({key: value, "fields": [{"name": "x"}]}, "s.json")
    if key != "name":  # a field without a text name is refused as before
        with pytest.raises(InvalidInput, match=f"{key} must be text"):
            standards.parse_standard({"fields": [{"name": "x", key: value}]}, "s.json")


def test_no_name_or_a_folder_is_refused_as_a_standard(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no standard named ''"):
        standards.get("")
    with pytest.raises(InvalidInput, match="cannot be read as a standard"):
        standards.get(tmp_path)
