"""A dataset's scope in the catalog: the regions it covers and its sector.

Both are declared by the provider at publish, as codes of the shipped code lists
(``region.*`` and ``sector``); datasets published before have none until their
provider publishes again with them.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("sector", sa.String(16), nullable=True))
        batch.create_index("ix_datasets_sector", ["sector"])
    op.create_table(
        "dataset_regions",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_regions_dataset_id_datasets"
        ),
        sa.PrimaryKeyConstraint("dataset_id", "code", name="pk_dataset_regions"),
    )
    op.create_index("ix_dataset_regions_code", "dataset_regions", ["code"])


def downgrade() -> None:
    op.drop_index("ix_dataset_regions_code", "dataset_regions")
    op.drop_table("dataset_regions")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_index("ix_datasets_sector")
        batch.drop_column("sector")
