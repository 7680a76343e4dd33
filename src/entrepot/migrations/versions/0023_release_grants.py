"""A release is bound to the grant it was made under, and keeps the reason of its
revocation.

``grant_id`` names the grant a release was made under: its consumer reads it only while
that very grant is in force. ``revoked_reason`` keeps why a release was revoked, for its
provider and the node's operators, where the log kept it before (those entries stay).

A release made before is bound to the grant it was made under: the latest grant of its
consumer on its dataset made at or before the release. A consumer holds one grant on a
dataset at a time and a release is made only under a grant in force, so that is the
one. A release no grant was made before stays bound to none, and is never readable.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("grant_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("revoked_reason", sa.Text(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_releases_grant_id_grants"), "grants", ["grant_id"], ["id"]
        )
    releases = sa.table(
        "releases",
        sa.column("id", sa.Integer()),
        sa.column("consumer_id", sa.Integer()),
        sa.column("dataset_id", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
        sa.column("grant_id", sa.Integer()),
    )
    grants = sa.table(
        "grants",
        sa.column("id", sa.Integer()),
        sa.column("consumer_id", sa.Integer()),
        sa.column("dataset_id", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
    )
    # Compared as datetimes here, not in SQL, where SQLite would compare the stored text.
    connection = op.get_bind()
    made: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)
    for grant_id, consumer_id, dataset_id, created_at in connection.execute(
        sa.select(grants.c.id, grants.c.consumer_id, grants.c.dataset_id, grants.c.created_at)
    ):
        made[consumer_id, dataset_id].append((created_at, grant_id))
    for release_id, consumer_id, dataset_id, created_at in connection.execute(
        sa.select(
            releases.c.id, releases.c.consumer_id, releases.c.dataset_id, releases.c.created_at
        )
    ).all():
        before = [g for at, g in made[consumer_id, dataset_id] if at <= created_at]
        if before:
            connection.execute(
                sa.update(releases).where(releases.c.id == release_id).values(grant_id=max(before))
            )


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_constraint(batch.f("fk_releases_grant_id_grants"), type_="foreignkey")
        batch.drop_column("revoked_reason")
        batch.drop_column("grant_id")
