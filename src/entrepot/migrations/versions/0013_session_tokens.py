"""Portal sessions are tokens: a session token's row names the API token it hangs from.

``parent_id`` is NULL for every API token; a portal sign-in writes a row whose
``parent_id`` is the API token signed in with, and a sign-out revokes that row.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_api_tokens_parent_id_api_tokens", "api_tokens", ["parent_id"], ["id"]
        )
        batch.create_index("ix_api_tokens_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_parent_id")
        batch.drop_constraint("fk_api_tokens_parent_id_api_tokens", type_="foreignkey")
        batch.drop_column("parent_id")
