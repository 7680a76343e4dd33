"""A version keeps the rows its rows-per-unit bound keeps and removes, released
privately at publish beside the bound: two noisy counts and the Laplace scale of
each one's noise.

Both are NULL for versions published before, whose answers of averages and quantiles
spend their own ε on what bounding removed, as before.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("unit_kept", sa.Float(), nullable=True))
        batch.add_column(sa.Column("unit_removed", sa.Float(), nullable=True))
        batch.add_column(sa.Column("unit_removed_scale", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("unit_removed_scale")
        batch.drop_column("unit_removed")
        batch.drop_column("unit_kept")
