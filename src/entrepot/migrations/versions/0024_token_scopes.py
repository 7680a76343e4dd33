"""An API token has a scope: ``full`` (everything its account may do) or ``sharing``
(the Delta Sharing routes only, a share profile's token).

Every token there is becomes ``full``, as it was: a profile's token made before keeps
working everywhere until it is revoked or expires. The column is added, with its check,
and dropped in place on SQLite as well: a copy of the table (SQLite's batch mode) fails
on a node with portal sessions, whose rows refer to their API token's row in the very
table the copy drops, with foreign keys enforced.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column(
                "scope",
                sa.String(16),
                sa.CheckConstraint(
                    "scope IN ('full', 'sharing')", name=op.f("ck_api_tokens_scope")
                ),
                nullable=False,
                server_default="full",
            )
        )


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column with its own check in place.
    op.drop_column("api_tokens", "scope")
