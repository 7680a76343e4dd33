"""The local organizations that hold a peer's consumers' contracts.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_consumers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("remote_org", sa.String(64), nullable=False),
        sa.Column("org_slug", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["federation_peers.id"],
            name=op.f("fk_federation_consumers_peer_id_federation_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_consumers")),
        sa.UniqueConstraint("org_slug", name=op.f("uq_federation_consumers_org_slug")),
        sa.UniqueConstraint("peer_id", "remote_org", name=op.f("uq_federation_consumers_peer_id")),
    )
    op.create_index(
        op.f("ix_federation_consumers_peer_id"), "federation_consumers", ["peer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("federation_consumers")
