"""Staff console: four roles, a second factor, console sessions, four eyes and case claims

Staff users gain the `approver` and `auditor` roles, a sealed TOTP secret (enrolled or not),
the last accepted time step and one-time recovery codes. The console has its own sessions.
Review cases gain two states (`proposed`: a reviewer approved, an approver must confirm;
`closed`: a duplicate or superseded case), who works on a case, and who confirmed it. The one
open case per VNeID identity now counts proposed cases as open too.

Existing rows keep their meaning: staff keep their role (and must enrol a second factor at
their next console sign-in), cases keep their status.

Revision ID: 0009
Revises: 0010
Create Date: 2026-11-29 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vssid_broker.db import BigId, UTCDateTime
from vssid_broker.identifiers import normalized_name

revision: str = "0009"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_CASE_INDEX = "uq_review_cases_pending_identity"
NAME_INDEX = "ix_accounts_name_key"
BATCH = 5_000


def _backfill_name_keys() -> None:
    """0006 keyed only records without a citizen ID; staff search by name needs them all."""
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.BigInteger),
        sa.column("full_name", sa.String),
        sa.column("name_key", sa.String),
    )
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(accounts.c.id, accounts.c.full_name)
            .where(accounts.c.name_key.is_(None), accounts.c.id > last_id)
            .order_by(accounts.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            sa.update(accounts)
            .where(accounts.c.id == sa.bindparam("row_id"))
            .values(name_key=sa.bindparam("key")),
            [{"row_id": row.id, "key": normalized_name(row.full_name)} for row in rows],
        )
        last_id = rows[-1].id


def _open_case_index(where: str) -> None:
    op.create_index(
        OPEN_CASE_INDEX,
        "review_cases",
        ["provider", "subject"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint(op.f("ck_staff_users_role_known"), type_="check")
        batch.create_check_constraint(
            "role_known", "role IN ('reviewer', 'approver', 'auditor', 'admin')"
        )
        batch.add_column(sa.Column("totp_secret_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("totp_enrolled_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", BigId, nullable=True))
    op.create_table(
        "staff_recovery_codes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("staff_id", BigId, nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_recovery_codes_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_staff_recovery_codes_code_hash")),
    )
    op.create_index(op.f("ix_staff_recovery_codes_staff_id"), "staff_recovery_codes", ["staff_id"])
    op.create_table(
        "staff_console_sessions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("staff_id", BigId, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("second_factor_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_console_sessions_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_console_sessions")),
        sa.UniqueConstraint("session_hash", name=op.f("uq_staff_console_sessions_session_hash")),
    )
    op.create_index("ix_staff_console_sessions_staff", "staff_console_sessions", ["staff_id"])
    op.drop_index(OPEN_CASE_INDEX, table_name="review_cases")
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_constraint(op.f("ck_review_cases_status_known"), type_="check")
        batch.create_check_constraint(
            "status_known",
            "status IN ('pending', 'proposed', 'approved', 'rejected', 'closed')",
        )
        batch.add_column(sa.Column("assigned_to", sa.String(64), nullable=True))
        batch.add_column(sa.Column("assigned_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("confirmed_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("confirmed_at", UTCDateTime(), nullable=True))
    _open_case_index("status IN ('pending', 'proposed')")
    _backfill_name_keys()
    op.create_index(NAME_INDEX, "accounts", ["name_key"])


def downgrade() -> None:
    op.drop_index(NAME_INDEX, table_name="accounts")
    # A proposal not yet confirmed goes back to the queue; a closed case had no decision.
    cases = sa.table("review_cases", sa.column("status", sa.String))
    op.execute(sa.update(cases).where(cases.c.status == "proposed").values(status="pending"))
    op.execute(sa.update(cases).where(cases.c.status == "closed").values(status="rejected"))
    op.drop_index(OPEN_CASE_INDEX, table_name="review_cases")
    with op.batch_alter_table("review_cases") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("confirmed_by")
        batch.drop_column("assigned_at")
        batch.drop_column("assigned_to")
        batch.drop_constraint(op.f("ck_review_cases_status_known"), type_="check")
        batch.create_check_constraint(
            "status_known", "status IN ('pending', 'approved', 'rejected')"
        )
    _open_case_index("status = 'pending'")
    op.drop_index("ix_staff_console_sessions_staff", table_name="staff_console_sessions")
    op.drop_table("staff_console_sessions")
    op.drop_index(op.f("ix_staff_recovery_codes_staff_id"), table_name="staff_recovery_codes")
    op.drop_table("staff_recovery_codes")
    # Approvers and auditors have no equivalent before this revision: they become reviewers
    # who decide nothing until an admin changes them (auditors lose the trail, not their row).
    staff = sa.table("staff_users", sa.column("role", sa.String))
    op.execute(
        sa.update(staff).where(staff.c.role.in_(["approver", "auditor"])).values(role="reviewer")
    )
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_enrolled_at")
        batch.drop_column("totp_secret_sealed")
        batch.drop_constraint(op.f("ck_staff_users_role_known"), type_="check")
        batch.create_check_constraint("role_known", "role IN ('reviewer', 'admin')")
