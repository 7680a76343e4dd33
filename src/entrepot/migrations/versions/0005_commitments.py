"""Commitments: a secret key per version, and the openings of logged queries.

Existing versions get a fresh random key here; their earlier log entries and
receipts keep the plain hashes they were written with.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("commitment_key", sa.LargeBinary(32), nullable=True))
    versions = sa.table("versions", sa.column("id", sa.Integer()), sa.column("commitment_key"))
    connection = op.get_bind()
    for (version_id,) in connection.execute(sa.select(versions.c.id)).all():
        connection.execute(
            versions.update()
            .where(versions.c.id == version_id)
            .values(commitment_key=secrets.token_bytes(32))
        )
    with op.batch_alter_table("versions") as batch:
        batch.alter_column("commitment_key", existing_type=sa.LargeBinary(32), nullable=False)
    op.create_table(
        "query_openings",
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(32), nullable=False),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["organizations.id"],
            name="fk_query_openings_consumer_id_organizations",
        ),
        sa.PrimaryKeyConstraint("commitment", name="pk_query_openings"),
    )


def downgrade() -> None:
    op.drop_table("query_openings")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("commitment_key")
