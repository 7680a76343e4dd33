"""A version keeps its rows-per-unit bound, estimated privately at publish, and its ε.

``unit_bound`` is NULL for versions published before (queries on them use the
fallback bound, or the policy's own); ``bound_epsilon_nano`` is what the estimate
spent of the dataset's global ε cap, 0 without one.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("unit_bound", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("bound_epsilon_nano", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("bound_epsilon_nano")
        batch.drop_column("unit_bound")
