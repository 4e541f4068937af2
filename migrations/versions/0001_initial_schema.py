"""Initial schema: accounts, insurance history, links, login transactions, tokens, keys, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:31:26.233472
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "accounts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("bhxh_code", sa.String(length=10), nullable=False),
        sa.Column("citizen_id", sa.String(length=12), nullable=True),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("gender", sa.String(length=6), nullable=False),
        sa.Column("phone", sa.String(length=15), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("gender IN ('male', 'female')", name=op.f("ck_accounts_gender_known")),
        sa.CheckConstraint(
            "status IN ('active', 'locked', 'closed')", name=op.f("ck_accounts_status_known")
        ),
        sa.CheckConstraint(
            "citizen_id IS NULL OR length(citizen_id) = 12",
            name=op.f("ck_accounts_citizen_id_12_digits"),
        ),
        sa.CheckConstraint("length(bhxh_code) = 10", name=op.f("ck_accounts_bhxh_code_10_digits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("bhxh_code", name=op.f("uq_accounts_bhxh_code")),
        sa.UniqueConstraint("citizen_id", name=op.f("uq_accounts_citizen_id")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("outcome", sa.String(length=60), nullable=False),
        sa.Column("account_id", BIG_ID, nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_account_at", ["account_id", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_type_at", ["event_type", "occurred_at"], unique=False
        )

    op.create_table(
        "login_transactions",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=7), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("return_to", sa.String(length=500), nullable=True),
        sa.Column("browser_binding_hash", sa.String(length=64), nullable=True),
        sa.Column("app_code_challenge", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "channel IN ('browser', 'app')", name=op.f("ck_login_transactions_channel_known")
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_login_transactions")),
    )
    with op.batch_alter_table("login_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_login_transactions_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_jwk_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signs_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "browser_sessions",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("acr", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "expires_at > created_at", name=op.f("ck_browser_sessions_ordered_times")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_browser_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_browser_sessions")),
    )
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_browser_sessions_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "federated_links",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("citizen_id", sa.String(length=12), nullable=False),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("linked_by", sa.String(length=100), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_federated_links_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federated_links")),
        sa.UniqueConstraint("account_id", name=op.f("uq_federated_links_account_id")),
        sa.UniqueConstraint("provider", "subject", name="uq_federated_links_identity"),
    )
    op.create_table(
        "health_insurance_cards",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("card_code", sa.String(length=15), nullable=False),
        sa.Column("benefit_level", sa.Integer(), nullable=False),
        sa.Column("primary_care_facility", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_health_insurance_cards_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_insurance_cards")),
        sa.UniqueConstraint("account_id", name=op.f("uq_health_insurance_cards_account_id")),
    )
    op.create_table(
        "insurance_periods",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("start_month", sa.Date(), nullable=False),
        sa.Column("end_month", sa.Date(), nullable=True),
        sa.Column("employer", sa.String(length=200), nullable=True),
        sa.Column("salary_basis_vnd", BIG_ID, nullable=True),
        sa.CheckConstraint(
            "kind IN ('BHXH', 'BHYT', 'BHTN')", name=op.f("ck_insurance_periods_kind_known")
        ),
        sa.CheckConstraint(
            "end_month IS NULL OR end_month >= start_month",
            name=op.f("ck_insurance_periods_ordered_months"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_insurance_periods_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insurance_periods")),
    )
    with op.batch_alter_table("insurance_periods", schema=None) as batch_op:
        batch_op.create_index(
            "ix_insurance_periods_account_kind", ["account_id", "kind", "start_month"], unique=False
        )

    op.create_table(
        "refresh_tokens",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", BIG_ID, nullable=False),
        sa.Column("acr", sa.String(length=100), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_refresh_tokens_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index("ix_refresh_tokens_family", ["family_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_refresh_tokens_family")
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_account_id"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("insurance_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_insurance_periods_account_kind")

    op.drop_table("insurance_periods")
    op.drop_table("health_insurance_cards")
    op.drop_table("federated_links")
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_browser_sessions_account_id"))

    op.drop_table("browser_sessions")
    op.drop_table("signing_keys")
    with op.batch_alter_table("login_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_login_transactions_expires_at")

    op.drop_table("login_transactions")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_type_at")
        batch_op.drop_index("ix_audit_events_account_at")

    op.drop_table("audit_events")
    op.drop_table("accounts")
