"""One convention for timestamps: naive UTC in a plain ``DateTime`` column everywhere.

The vault's tables and the query openings held ``TIMESTAMP WITH TIME ZONE`` on
PostgreSQL while every other table held naive UTC (see :mod:`entrepot.clock`). The
values are converted at UTC, so no instant changes. SQLite stores neither an offset
nor a type, so its files are already in the new form.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("providers", "created_at"),
    ("datasets", "created_at"),
    ("datasets", "updated_at"),
    ("versions", "created_at"),
    ("query_openings", "created_at"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.DateTime(),
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=False,
            postgresql_using=f"{column} AT TIME ZONE 'UTC'",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.DateTime(timezone=True),
            existing_type=sa.DateTime(),
            existing_nullable=False,
            postgresql_using=f"{column} AT TIME ZONE 'UTC'",
        )
