"""Log outbox: entries owed by committed state changes, and what node.db saw of the log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_size", sa.BigInteger(), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_log_outbox"),
    )
    op.create_index("ix_log_outbox_log_index", "log_outbox", ["log_index"])
    op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("heads_end", sa.BigInteger(), nullable=False),
        sa.Column("head_sha256", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log_state"),
    )


def downgrade() -> None:
    op.drop_table("log_state")
    op.drop_index("ix_log_outbox_log_index", table_name="log_outbox")
    op.drop_table("log_outbox")
