"""Exchange: organizations, accounts, API tokens, contracts, budgets and the ledger.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ROLES = "kind IN ('operator', 'provider', 'consumer', 'auditor')"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(_ROLES, name="ck_organizations_kind"),
        _fk("organizations", "provider_id", "providers"),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("slug", name="uq_organizations_slug"),
        sa.UniqueConstraint("provider_id", name="uq_organizations_provider_id"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(_ROLES.replace("kind", "role"), name="ck_accounts_role"),
        _fk("accounts", "org_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_index("ix_accounts_org_id", "accounts", ["org_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.String(12), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        _fk("api_tokens", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_id", name="uq_api_tokens_token_id"),
    )
    op.create_index("ix_api_tokens_account_id", "api_tokens", ["account_id"])
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("epsilon_nano", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('requested', 'granted', 'refused')", name="ck_access_requests_state"
        ),
        _fk("access_requests", "consumer_id", "organizations"),
        _fk("access_requests", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("id", name="pk_access_requests"),
    )
    op.create_index("ix_access_requests_consumer_id", "access_requests", ["consumer_id"])
    op.create_index("ix_access_requests_dataset_id", "access_requests", ["dataset_id"])
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("epsilon_nano", sa.BigInteger(), nullable=False),
        sa.Column("max_queries", sa.Integer(), nullable=True),
        sa.Column("price_per_query_cents", sa.BigInteger(), nullable=False),
        sa.Column("price_per_epsilon_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("duties", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("state IN ('granted', 'revoked', 'expired')", name="ck_grants_state"),
        _fk("grants", "request_id", "access_requests"),
        _fk("grants", "consumer_id", "organizations"),
        _fk("grants", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
        sa.UniqueConstraint("request_id", name="uq_grants_request_id"),
    )
    op.create_index("ix_grants_consumer_id", "grants", ["consumer_id"])
    op.create_index("ix_grants_dataset_id", "grants", ["dataset_id"])
    op.create_table(
        "contract_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _fk("contract_events", "request_id", "access_requests"),
        _fk("contract_events", "grant_id", "grants"),
        sa.PrimaryKeyConstraint("id", name="pk_contract_events"),
    )
    op.create_index("ix_contract_events_request_id", "contract_events", ["request_id"])
    op.create_index("ix_contract_events_grant_id", "contract_events", ["grant_id"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("epsilon_total_nano", sa.BigInteger(), nullable=False),
        sa.Column("epsilon_remaining_nano", sa.BigInteger(), nullable=False),
        sa.Column("max_queries", sa.Integer(), nullable=True),
        sa.Column("queries_remaining", sa.Integer(), nullable=True),
        sa.Column("price_per_query_cents", sa.BigInteger(), nullable=False),
        sa.Column("price_per_epsilon_cents", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("epsilon_remaining_nano >= 0", name="ck_budgets_epsilon_remaining"),
        sa.CheckConstraint(
            "queries_remaining IS NULL OR queries_remaining >= 0",
            name="ck_budgets_queries_remaining",
        ),
        _fk("budgets", "grant_id", "grants"),
        _fk("budgets", "consumer_id", "organizations"),
        _fk("budgets", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
        sa.UniqueConstraint("grant_id", name="uq_budgets_grant_id"),
    )
    op.create_index("ix_budgets_consumer_id", "budgets", ["consumer_id"])
    op.create_index("ix_budgets_dataset_id", "budgets", ["dataset_id"])
    op.create_index(
        "uq_budgets_open_consumer_dataset",
        "budgets",
        ["consumer_id", "dataset_id"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )
    op.create_table(
        "dataset_caps",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("cap_nano", sa.BigInteger(), nullable=False),
        sa.Column("remaining_nano", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("remaining_nano >= 0", name="ck_dataset_caps_remaining"),
        sa.CheckConstraint("remaining_nano <= cap_nano", name="ck_dataset_caps_within_cap"),
        _fk("dataset_caps", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_dataset_caps"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("query_text", sa.Text(), nullable=False),
        sa.Column("query_sha256", sa.String(64), nullable=False),
        sa.Column("epsilon_nano", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("rows_scanned", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("touched_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('reserved', 'touched', 'completed', 'released')",
            name="ck_ledger_entries_state",
        ),
        _fk("ledger_entries", "budget_id", "budgets"),
        _fk("ledger_entries", "consumer_id", "organizations"),
        _fk("ledger_entries", "dataset_id", "datasets"),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
    )
    op.create_index("ix_ledger_entries_budget_id", "ledger_entries", ["budget_id"])
    op.create_index(
        "ix_ledger_entries_consumer_finished", "ledger_entries", ["consumer_id", "finished_at"]
    )
    op.create_index(
        "ix_ledger_entries_dataset_finished", "ledger_entries", ["dataset_id", "finished_at"]
    )
    op.create_table(
        "stored_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consumer_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(64), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _fk("stored_answers", "consumer_id", "organizations"),
        _fk("stored_answers", "entry_id", "ledger_entries"),
        sa.PrimaryKeyConstraint("id", name="pk_stored_answers"),
        sa.UniqueConstraint("consumer_id", "fingerprint", name="uq_stored_answers_consumer_id"),
    )


def downgrade() -> None:
    for table in (
        "stored_answers",
        "ledger_entries",
        "dataset_caps",
        "budgets",
        "contract_events",
        "grants",
        "access_requests",
        "api_tokens",
        "accounts",
        "organizations",
    ):
        op.drop_table(table)
