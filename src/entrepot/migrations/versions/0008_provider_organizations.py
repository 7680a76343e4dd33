"""Every provider has its organization: the ones made lazily before are made now.

Organizations of providers used to be created on first use (``--as`` or a provider
account), so a node may hold providers without one. Each gets its organization here,
with the provider's slug, name and creation time, as ``add_provider`` now writes it.
A provider whose slug an organization of another role already took keeps none, as
before: that organization was, and stays, the one ``--as`` names.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_providers = sa.table(
    "providers", sa.column("id"), sa.column("slug"), sa.column("name"), sa.column("created_at")
)
_organizations = sa.table(
    "organizations",
    sa.column("slug"),
    sa.column("name"),
    sa.column("kind"),
    sa.column("provider_id"),
    sa.column("created_at"),
)


def upgrade() -> None:
    linked = sa.select(_organizations.c.provider_id).where(
        _organizations.c.provider_id.is_not(None)
    )
    taken = sa.select(_organizations.c.slug)
    # In SQL alone, so that every value is copied exactly as stored.
    missing = sa.select(
        _providers.c.slug,
        _providers.c.name,
        sa.literal("provider"),
        _providers.c.id,
        _providers.c.created_at,
    ).where(_providers.c.id.not_in(linked), _providers.c.slug.not_in(taken))
    op.execute(
        sa.insert(_organizations).from_select(
            ["slug", "name", "kind", "provider_id", "created_at"], missing
        )
    )


def downgrade() -> None:
    """Nothing to undo: the organizations are as first use would have made them."""
