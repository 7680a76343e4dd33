"""Link keys: declared in the standard, one canonical form per concept, joins by concept."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.errors import InvalidInput, NotFound, PolicyViolation
from entrepot.standards import get, parse_standard
from entrepot.standards.linkkeys import (
    check_joinable,
    concept,
    concept_names,
    joinable,
)

DOCUMENT: dict[str, Any] = {
    "name": "test.people",
    "fields": [
        {
            "name": "resident",
            "type": "string",
            "entrepot:role": "identifier",
            "entrepot:linkKey": "resident-number",
        },
        {
            "name": "phone",
            "type": "integer",
            "entrepot:role": "identifier",
            "entrepot:linkKey": "phone-number",
        },
        {"name": "row_id", "type": "string", "entrepot:role": "identifier"},
    ],
    "entrepot:privacyUnit": "resident",
}


def _with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["fields"][0].update(changes)
    return document


def test_a_standard_declares_its_link_keys() -> None:
    people = parse_standard(DOCUMENT, "test")
    assert people.field("resident").link_key == "resident-number"
    assert people.field("phone").link_key == "phone-number"
    assert people.field("row_id").link_key is None
    assert people.summary()["fields"][0]["link_key"] == "resident-number"


def test_the_demo_standards_mark_the_shared_population() -> None:
    assert get("health.visit").field("patient_id").link_key == "resident-number"
    assert get("payments.transaction").field("person_id").link_key == "resident-number"
    assert get("org.registry").field("firm_id").link_key == "firm-number"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"entrepot:linkKey": "passport"}, "unknown link-key concept"),
        ({"entrepot:role": "quasi_identifier"}, "must be a string or integer identifier"),
        ({"type": "date"}, "must be a string or integer identifier"),
    ],
)
def test_a_bad_link_key_is_refused_with_a_hint(changes: dict[str, Any], message: str) -> None:
    document = _with(**changes)
    document.pop("entrepot:privacyUnit")
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_standard(document, "test")
    assert caught.value.hint


def test_two_columns_join_only_on_the_same_concept() -> None:
    people = parse_standard(DOCUMENT, "test")
    visits, payments = get("health.visit"), get("payments.transaction")
    assert joinable(visits.field("patient_id"), payments.field("person_id"))
    assert not joinable(people.field("phone"), visits.field("patient_id"))
    assert not joinable(people.field("row_id"), people.field("row_id"))
    assert check_joinable(visits, "patient_id", people, "resident").name == "resident-number"
    with pytest.raises(PolicyViolation, match="phone-number") as caught:
        check_joinable(people, "phone", visits, "patient_id")
    assert caught.value.rule == "link_key"
    with pytest.raises(PolicyViolation, match="not a link key") as caught:
        check_joinable(visits, "visit_id", payments, "person_id")
    assert "patient_id" in caught.value.hint


def test_an_unknown_concept_lists_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        concept("passport")
    assert all(name in caught.value.hint for name in concept_names())


@pytest.mark.parametrize(
    ("name", "raw", "canonical"),
    [
        ("resident-number", " zr-0012 345678 ", "ZR0012345678"),
        ("resident-number", "ＺＲ００１２３４５６７８", "ZR0012345678"),
        ("resident-number", "ZR", None),
        ("resident-number", "ZR#123456", None),
        ("phone-number", "+1 (30) 1234-5678", "13012345678"),
        ("phone-number", 13012345678, "13012345678"),
        ("phone-number", "1301234567x", None),
        ("phone-number", "1234567890123456", None),
        ("firm-number", "91310000-775785552l", "91310000775785552L"),
        ("firm-number", "91310000775785552O", None),
        ("resident-number", None, None),
        ("resident-number", True, None),
        ("resident-number", 1.5, None),
        ("resident-number", "", None),
    ],
)
def test_values_are_brought_to_one_canonical_form(
    name: str, raw: object, canonical: str | None
) -> None:
    assert concept(name).canonicalize(raw) == canonical


@given(st.sampled_from(concept_names()), st.one_of(st.text(max_size=40), st.integers()))
def test_canonical_forms_are_fixed_points(name: str, raw: object) -> None:
    rule = concept(name)
    canonical = rule.canonicalize(raw)
    if canonical is not None:
        assert rule.canonicalize(canonical) == canonical
        assert canonical.isascii()
        assert canonical.isalnum()


def test_every_concept_is_documented() -> None:
    doc = (Path(__file__).parent.parent.parent / "docs" / "standard.md").read_text("utf-8")
    for name in concept_names():
        assert f"| `{name}` |" in doc, name
