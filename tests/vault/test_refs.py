from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrepot.errors import InvalidInput, param
from entrepot.vault import DatasetRef, dataset_slug_from_title, slugify
from entrepot.vault.refs import check_slug, dataset_title

slugs = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,3}", fullmatch=True)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Outpatient visits 2025", "outpatient-visits"),
        ("Outpatient visits (2025)", "outpatient-visits"),
        ("Outpatient visits – 2025", "outpatient-visits"),
        ("Phone presence per district, hourly", "phone-presence-per-district-hourly"),
        ("Établissements de santé", "etablissements-de-sante"),
        ("2025", "2025"),
        ("Top 100 firms", "top-100-firms"),
    ],
)
def test_dataset_slug_drops_a_trailing_year(title: str, slug: str) -> None:
    assert dataset_slug_from_title(title) == slug


def test_dataset_title_keeps_the_words_and_drops_the_year() -> None:
    assert dataset_title("Outpatient visits 2025") == "Outpatient visits"
    assert dataset_title("2025") == "2025"


def test_a_title_without_ascii_words_needs_an_explicit_slug() -> None:
    with pytest.raises(InvalidInput) as caught:
        dataset_slug_from_title("门诊就诊")
    assert param("dataset") in caught.value.hint


@given(st.text())
def test_slugify_gives_a_valid_slug_or_nothing(text: str) -> None:
    slug = slugify(text)
    assert slug == "" or check_slug(slug) == slug


@given(slugs, slugs)
def test_references_and_sql_names_round_trip(provider: str, dataset: str) -> None:
    ref = DatasetRef(provider, dataset)
    assert DatasetRef.parse(str(ref)) == ref
    assert DatasetRef.from_sql_name(ref.sql_name) == ref
    assert "-" not in ref.sql_name


def test_the_documented_example() -> None:
    ref = DatasetRef.parse("riverside-hospitals/outpatient-visits")
    assert ref.sql_name == "riverside_hospitals.outpatient_visits"
    assert DatasetRef.from_sql_name("Riverside_Hospitals.Outpatient_Visits") == ref


@pytest.mark.parametrize(
    "text", ["riverside", "/visits", "a/", "A/b", "a b/c", "a--b/c", "-a/b", "a/b/c"]
)
def test_malformed_references_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        DatasetRef.parse(text)
    assert caught.value.hint


@pytest.mark.parametrize("name", ["riverside", "a.b.c", "a-b.c", "a__b.c", "_a.b", "a.b;drop"])
def test_malformed_sql_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        DatasetRef.from_sql_name(name)
