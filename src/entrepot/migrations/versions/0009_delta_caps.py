"""A dataset's global cap holds δ as well as ε: its δ cap and what is left, in atto-δ.

Each existing cap gets the δ cap its policy gives by default (1/(10·N) for the latest
version's N rows, rounded down to a power of ten, at most 1e-6, raised to one Gaussian
query's δ), and what its ledger rows in spent states already spent is taken from it.
A cap already spent past that default stops at the spend, with nothing left. The
figures are computed here as the code computed them when this revision was written,
so that a later change of policy defaults does not change what this upgrade did.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
import yaml
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ATTO = 10**18
_MAX_DELTA = 1e-6
_SPENT_STATES = ("reserved", "touched", "completed")

_caps = sa.table(
    "dataset_caps",
    sa.column("dataset_id"),
    sa.column("delta_cap_atto"),
    sa.column("delta_remaining_atto"),
)
_entries = sa.table(
    "ledger_entries", sa.column("dataset_id"), sa.column("delta"), sa.column("state")
)
_versions = sa.table("versions", sa.column("dataset_id"), sa.column("number"), sa.column("rows"))
_policies = sa.table("policies", sa.column("dataset_id"), sa.column("document"))


def _atto(delta: float, rounding: str) -> int:
    return int((Decimal(str(delta)) * _ATTO).to_integral_value(rounding))


def _default_cap(rows: int, policy: dict[str, Any]) -> float:
    limit = min(_MAX_DELTA, 1 / (10 * max(rows, 1)))
    decade = 10.0 ** math.floor(math.log10(limit))
    if decade > limit:
        decade /= 10
    delta = policy.get("delta", 1e-10)
    gaussian = policy.get("mechanism") == "gaussian" and isinstance(delta, int | float)
    if gaussian and decade < delta <= limit:
        return float(delta)
    return decade


def upgrade() -> None:
    with op.batch_alter_table("dataset_caps") as batch:
        batch.add_column(sa.Column("delta_cap_atto", sa.BigInteger(), server_default="0"))
        batch.add_column(sa.Column("delta_remaining_atto", sa.BigInteger(), server_default="0"))
    bind = op.get_bind()
    spent: dict[int, int] = {}
    for dataset_id, delta in bind.execute(
        sa.select(_entries.c.dataset_id, _entries.c.delta).where(
            _entries.c.state.in_(_SPENT_STATES), _entries.c.delta > 0
        )
    ):
        spent[dataset_id] = spent.get(dataset_id, 0) + _atto(delta, ROUND_CEILING)
    latest: dict[int, int] = {}
    for dataset_id, rows in bind.execute(
        sa.select(_versions.c.dataset_id, _versions.c.rows).order_by(_versions.c.number)
    ):
        latest[dataset_id] = rows
    policies = {
        dataset_id: yaml.safe_load(document) or {}
        for dataset_id, document in bind.execute(
            sa.select(_policies.c.dataset_id, _policies.c.document)
        )
    }
    for (dataset_id,) in bind.execute(sa.select(_caps.c.dataset_id)).all():
        default = _default_cap(latest.get(dataset_id, 0), policies.get(dataset_id, {}))
        used = spent.get(dataset_id, 0)
        cap = max(used, _atto(default, ROUND_FLOOR))
        bind.execute(
            sa.update(_caps)
            .where(_caps.c.dataset_id == dataset_id)
            .values(delta_cap_atto=cap, delta_remaining_atto=cap - used)
        )
    # The table as it stands, so that SQLite's copy keeps every constraint's name as is.
    with op.batch_alter_table("dataset_caps", copy_from=_frozen()) as batch:
        for name in ("delta_cap_atto", "delta_remaining_atto"):
            batch.alter_column(
                name, existing_type=sa.BigInteger(), nullable=False, server_default=None
            )
        batch.create_check_constraint(
            op.f("ck_dataset_caps_delta_remaining"), sa.text("delta_remaining_atto >= 0")
        )
        batch.create_check_constraint(
            op.f("ck_dataset_caps_delta_within_cap"),
            sa.text("delta_remaining_atto <= delta_cap_atto"),
        )


def _frozen() -> sa.Table:
    return sa.Table(
        "dataset_caps",
        sa.MetaData(),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("cap_nano", sa.BigInteger(), nullable=False),
        sa.Column("remaining_nano", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("delta_cap_atto", sa.BigInteger(), server_default="0"),
        sa.Column("delta_remaining_atto", sa.BigInteger(), server_default="0"),
        sa.CheckConstraint("remaining_nano >= 0", name=op.f("ck_dataset_caps_remaining")),
        sa.CheckConstraint("remaining_nano <= cap_nano", name=op.f("ck_dataset_caps_within_cap")),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_caps_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("dataset_id", name=op.f("pk_dataset_caps")),
    )


def downgrade() -> None:
    with op.batch_alter_table("dataset_caps") as batch:
        batch.drop_constraint(op.f("ck_dataset_caps_delta_within_cap"), type_="check")
        batch.drop_constraint(op.f("ck_dataset_caps_delta_remaining"), type_="check")
        batch.drop_column("delta_remaining_atto")
        batch.drop_column("delta_cap_atto")
