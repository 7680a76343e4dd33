"""A local consumer's requests and grants on peers, as the peers last described them.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("org_slug", sa.String(64), nullable=False),
        sa.Column("contract", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("valid_until", sa.String(32), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["federation_peers.id"],
            name=op.f("fk_federation_grants_peer_id_federation_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_grants")),
        sa.UniqueConstraint(
            "peer_id", "org_slug", "contract", name=op.f("uq_federation_grants_peer_id")
        ),
    )
    op.create_index(
        op.f("ix_federation_grants_peer_id"), "federation_grants", ["peer_id"], unique=False
    )
    op.create_index(
        op.f("ix_federation_grants_org_slug"), "federation_grants", ["org_slug"], unique=False
    )


def downgrade() -> None:
    op.drop_table("federation_grants")
