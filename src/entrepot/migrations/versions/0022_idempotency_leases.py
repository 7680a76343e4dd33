"""An idempotency key's claim is a lease its request renews while it runs, and a key
keeps the failure of a request that failed once it may have committed.

``holder`` names the request that renews the claim, ``expires_at`` is when the claim
lapses, ``failed`` the error code of an uncertain failure. A claim taken before lapsed
15 minutes after it was taken, and keeps that time.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# How long a claim lasted before leases: from when it was taken, never renewed.
_STALE = timedelta(minutes=15)


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("holder", sa.String(32), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("failed", sa.String(40), nullable=True))
    keys = sa.table(
        "idempotency_keys",
        sa.column("id", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
        sa.column("expires_at", sa.DateTime()),
    )
    # Computed here, not in SQL: SQLite and PostgreSQL add to a timestamp differently,
    # and SQLite's date functions would write another text form than the column holds.
    connection = op.get_bind()
    for row_id, created_at in connection.execute(sa.select(keys.c.id, keys.c.created_at)).all():
        connection.execute(
            sa.update(keys).where(keys.c.id == row_id).values(expires_at=created_at + _STALE)
        )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("failed")
        batch.drop_column("expires_at")
        batch.drop_column("holder")
