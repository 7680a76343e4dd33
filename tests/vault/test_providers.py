"""A provider and its organization are one party, written together and never apart."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from entrepot.errors import Conflict
from entrepot.exchange.accounts import LOCAL, Accounts, Role
from entrepot.exchange.node import Node
from entrepot.organizations import Organization
from entrepot.schemas.providers import ProviderOut
from entrepot.vault.models import Provider
from entrepot.vault.providers import ProviderInfo, add_provider, list_providers


def test_adding_a_provider_makes_its_organization(any_node: Node) -> None:
    add_provider(any_node.db, "riverside-hospitals", "Riverside Hospitals")
    with any_node.db.read() as session:
        provider = session.scalars(select(Provider)).one()
        org = session.scalars(select(Organization)).one()
    assert (org.slug, org.name, org.kind) == (
        "riverside-hospitals",
        "Riverside Hospitals",
        "provider",
    )
    assert org.provider_id == provider.id
    assert org.created_at == provider.created_at


def test_acting_as_a_provider_writes_nothing(any_node: Node) -> None:
    add_provider(any_node.db, "riverside-hospitals", "Riverside Hospitals")
    accounts = Accounts(any_node.db, any_node.settings, log=any_node.log)
    with any_node.db.read() as session:
        provider_id = session.scalars(select(Provider.id)).one()
    before = _organizations(any_node)
    actor = accounts.actor("riverside-hospitals")
    assert (actor.role, actor.provider_id) == (Role.PROVIDER, provider_id)
    assert _organizations(any_node) == before == 1


def test_a_slug_another_organization_holds_is_refused_whole(any_node: Node) -> None:
    accounts = Accounts(any_node.db, any_node.settings, log=any_node.log)
    accounts.create(LOCAL, "city-health-bureau", "consumer")
    with pytest.raises(
        Conflict, match="organization city-health-bureau already exists as a consumer"
    ):
        add_provider(any_node.db, "city-health-bureau", "City Health Bureau")
    with any_node.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Provider)) == 0
    assert accounts.actor("city-health-bureau").provider_id is None


def _organizations(node: Node) -> int:
    with node.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Organization)) or 0)


@pytest.mark.parametrize("micro", [0, 123456])
def test_a_provider_s_body_is_the_api_model_s_dump(any_node: Node, micro: int) -> None:
    added = add_provider(any_node.db, "riverside-hospitals", "Riverside Hospitals")
    listed = list_providers(any_node.db)
    moved = ProviderInfo(added.slug, added.name, added.created_at.replace(microsecond=micro), 3)
    for info in (added, *listed, moved):
        body = info.to_body()
        assert json.dumps(body) == json.dumps(
            ProviderOut.model_validate(info.to_dict()).model_dump(mode="json")
        )
