"""The public surface other parts build on: changing it must be a deliberate act."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import PurePath

from sqlalchemy import orm

import entrepot.vault
from entrepot.engine import Engine
from entrepot.engine import Session as EngineSession
from entrepot.exchange import catalog, dcat

VAULT_API = [
    "Aggregate",
    "Aggregated",
    "AttachedView",
    "Blind",
    "Blinded",
    "DatasetRef",
    "LocalVault",
    "MakeRelease",
    "OnError",
    "Operation",
    "OperationKind",
    "Outcome",
    "Progress",
    "ProviderInfo",
    "PublishRequest",
    "Published",
    "Reblind",
    "Reblinded",
    "Recipe",
    "Released",
    "Touched",
    "UnitBound",
    "Vault",
    "VersionInfo",
    "add_provider",
    "dataset_slug_from_title",
    "list_providers",
    "slugify",
]


def test_the_vault_exports_exactly_its_public_names() -> None:
    assert sorted(entrepot.vault.__all__) == sorted(VAULT_API)
    for name in VAULT_API:
        assert getattr(entrepot.vault, name) is not None


def test_catalog_and_dcat_export_what_they_name() -> None:
    assert catalog.__all__ == [
        "CONTENT_FIGURES",
        "Catalog",
        "CatalogVersion",
        "DatasetPage",
        "DatasetSummary",
        "FacetColumns",
        "Facets",
        "publish_version",
        "search_terms",
        "sees_content",
    ]
    assert dcat.__all__ == [
        "ANSWER_MEDIA_TYPE",
        "CONTEXT",
        "DEFAULT_LICENSE",
        "RESTRICTED",
        "agent_iri",
        "catalog_header",
        "dataset_entry",
        "dataset_iri",
        "export_dcat",
    ]
    for module in (catalog, dcat):
        for name in module.__all__:
            assert hasattr(module, name)


def _types(hint: object) -> Iterator[object]:
    yield hint
    for argument in typing.get_args(hint):
        yield from _types(argument)


def test_the_vault_protocol_has_no_paths_sessions_or_engines_in_its_signatures() -> None:
    unservable = (PurePath, orm.Session, Engine, EngineSession)
    for name in ("publish", "versions", "standard", "run"):
        for hint in typing.get_type_hints(getattr(entrepot.vault.Vault, name)).values():
            for kind in _types(hint):
                assert not (isinstance(kind, type) and issubclass(kind, unservable))
    assert not hasattr(entrepot.vault.Vault, "attach")
