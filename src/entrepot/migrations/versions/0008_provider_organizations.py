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
    "providers",
    sa.column("id", sa.Integer()),
    sa.column("slug", sa.String()),
    sa.column("name", sa.String()),
    sa.column("created_at", sa.DateTime()),
)
_organizations = sa.table(
    "organizations",
    sa.column("id", sa.Integer()),
    sa.column("slug", sa.String()),
    sa.column("name", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("provider_id", sa.Integer()),
    sa.column("created_at", sa.DateTime()),
)


def upgrade() -> None:
    connection = op.get_bind()
    linked = sa.select(_organizations.c.provider_id).where(
        _organizations.c.provider_id.is_not(None)
    )
    taken = sa.select(_organizations.c.slug)
    missing = connection.execute(
        sa.select(_providers).where(_providers.c.id.not_in(linked), _providers.c.slug.not_in(taken))
    ).all()
    if missing:
        connection.execute(
            sa.insert(_organizations),
            [
                {
                    "slug": row.slug,
                    "name": row.name,
                    "kind": "provider",
                    "provider_id": row.id,
                    "created_at": row.created_at,
                }
                for row in missing
            ],
        )


def downgrade() -> None:
    """Nothing to undo: the organizations are as first use would have made them."""
