"""Federation: the peers an operator trusts, the nonces of signed requests, and the
read-only copy of each peer's catalog.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.String(500), nullable=False),
        sa.Column("catalog_cursor", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_peers")),
        sa.UniqueConstraint("name", name=op.f("uq_federation_peers_name")),
        sa.UniqueConstraint("public_key", name=op.f("uq_federation_peers_public_key")),
    )
    op.create_table(
        "federation_nonces",
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sender", "nonce", name=op.f("pk_federation_nonces")),
    )
    op.create_index(
        op.f("ix_federation_nonces_seen_at"), "federation_nonces", ["seen_at"], unique=False
    )
    op.create_table(
        "federation_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer_id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(200), nullable=False),
        sa.Column("standard", sa.String(200), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=True),
        sa.Column("modified", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["peer_id"],
            ["federation_peers.id"],
            name=op.f("fk_federation_datasets_peer_id_federation_peers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_datasets")),
        sa.UniqueConstraint("peer_id", "dataset", name=op.f("uq_federation_datasets_peer_id")),
    )
    op.create_index(
        op.f("ix_federation_datasets_peer_id"), "federation_datasets", ["peer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("federation_datasets")
    op.drop_table("federation_nonces")
    op.drop_table("federation_peers")
