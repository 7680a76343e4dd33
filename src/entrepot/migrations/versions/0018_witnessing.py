"""Witnessing between peers: the latest checkpoint of each peer's log this node
cosigned.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("federation_peers") as batch:
        batch.add_column(sa.Column("witnessed_size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("witnessed_checkpoint", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("federation_peers") as batch:
        batch.drop_column("witnessed_checkpoint")
        batch.drop_column("witnessed_size")
