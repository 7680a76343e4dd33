"""A peer's datasets keep their provider, sector and regions, so that a federated
search takes the catalog's facets. Copies pulled before have none until the peer's
next feed sends them again.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("federation_datasets") as batch:
        batch.add_column(
            sa.Column("provider_slug", sa.String(200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("sector", sa.String(16), nullable=True))
        batch.create_index("ix_federation_datasets_sector", ["sector"])
    op.create_table(
        "federation_dataset_regions",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["federation_datasets.id"],
            name="fk_federation_dataset_regions_dataset_id_federation_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "code", name="pk_federation_dataset_regions"),
    )
    op.create_index("ix_federation_dataset_regions_code", "federation_dataset_regions", ["code"])


def downgrade() -> None:
    op.drop_index("ix_federation_dataset_regions_code", "federation_dataset_regions")
    op.drop_table("federation_dataset_regions")
    with op.batch_alter_table("federation_datasets") as batch:
        batch.drop_index("ix_federation_datasets_sector")
        batch.drop_column("sector")
        batch.drop_column("provider_slug")
