"""Step-up (when and how the person last signed in at VNeID) and the person's requests

- `browser_sessions.auth_time`, `refresh_tokens.auth_time`: the last authentication at VNeID
  behind the session (RFC 9470); a refresh copies it, so refreshing never makes it fresh.
- `login_transactions.max_age`, `login_transactions.prompt`: what the login asked VNeID for, so
  the callback checks `auth_time` against the same `max_age` (OIDC Core §3.1.2.1).
- `agency_requests`, `agency_request_events`, `agency_request_phone_codes`: the requests, their
  history, and the one-time code of a new phone number; `agency_request_drafts`: a browser form
  kept server-side while the person signs in again (step-up).

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-07 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vssid_broker.db import BigId, UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('awaiting_code', 'submitted', 'in_progress')"


def _foreign_key(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    for table in ("browser_sessions", "refresh_tokens"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("auth_time", UTCDateTime(), nullable=True))
    with op.batch_alter_table("login_transactions") as batch:
        batch.add_column(sa.Column("max_age", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("prompt", sa.String(20), nullable=True))
    op.create_table(
        "agency_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(20), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("status", sa.String(15), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("refusal_reason", sa.String(500), nullable=True),
        sa.Column("assigned_to", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        _foreign_key("agency_requests", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_requests")),
        sa.UniqueConstraint("reference", name=op.f("uq_agency_requests_reference")),
        sa.CheckConstraint(
            "kind IN ('health_card_reissue', 'primary_care_change', 'phone_change')",
            name=op.f("ck_agency_requests_kind_known"),
        ),
        sa.CheckConstraint(
            "status IN ('awaiting_code', 'submitted', 'in_progress', 'done', 'refused',"
            " 'cancelled')",
            name=op.f("ck_agency_requests_status_known"),
        ),
    )
    op.create_index(
        "uq_agency_requests_open_kind",
        "agency_requests",
        ["account_id", "kind"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_agency_requests_status_submitted", "agency_requests", ["status", "submitted_at"]
    )
    op.create_index("ix_agency_requests_account", "agency_requests", ["account_id", "created_at"])
    op.create_table(
        "agency_request_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("request_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(15), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        _foreign_key("agency_request_events", "request_id", "agency_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_request_events")),
    )
    op.create_index(
        "ix_agency_request_events_request", "agency_request_events", ["request_id", "at"]
    )
    op.create_table(
        "agency_request_phone_codes",
        sa.Column("request_id", BigId, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        _foreign_key("agency_request_phone_codes", "request_id", "agency_requests"),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_agency_request_phone_codes")),
    )

    op.create_table(
        "agency_request_drafts",
        sa.Column("draft_hash", sa.String(64), nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        _foreign_key("agency_request_drafts", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("draft_hash", name=op.f("pk_agency_request_drafts")),
    )
    op.create_index("ix_agency_request_drafts_expires_at", "agency_request_drafts", ["expires_at"])


def downgrade() -> None:
    op.drop_table("agency_request_drafts")
    op.drop_table("agency_request_phone_codes")
    op.drop_table("agency_request_events")
    op.drop_table("agency_requests")
    with op.batch_alter_table("login_transactions") as batch:
        batch.drop_column("prompt")
        batch.drop_column("max_age")
    for table in ("browser_sessions", "refresh_tokens"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("auth_time")
