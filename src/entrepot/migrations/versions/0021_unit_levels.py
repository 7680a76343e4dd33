"""A version keeps the quantile level of rows per unit its bound estimates: the 95th
percentile where the data has units enough to resolve it, a lower one chosen by a
noisy count of units where it has not.

NULL for versions without a bound; versions published before with one get 0.95, the
level every bound estimated then.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("unit_level", sa.Float(), nullable=True))
    op.execute("UPDATE versions SET unit_level = 0.95 WHERE unit_bound IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("unit_level")
