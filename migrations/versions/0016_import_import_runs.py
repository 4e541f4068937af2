"""Accounts import: the runs, and the staging table a run's valid rows wait in

`vssid-broker accounts import` stages every valid row of a file in `account_import_rows`, then
merges it into `accounts` batch by batch, recording each batch's progress in its `import_runs`
row in the batch's own transaction. On PostgreSQL the staging table is UNLOGGED: its rows are
read again from the file after a crash, so logging them would only slow the load.

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-07 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vssid_broker.db import BigId, UTCDateTime

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("file_name", sa.String(300), nullable=False),
        sa.Column("file_digest", sa.String(64), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("merged_through_line", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("rejected_by_reason", sa.JSON(), nullable=False),
        sa.Column("sessions_ended", sa.Integer(), nullable=False),
        sa.Column("reviews_opened", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed', 'interrupted', 'dry_run')",
            name=op.f("ck_import_runs_import_run_status_known"),
        ),
    )
    op.create_index("ix_import_runs_started_at", "import_runs", ["started_at"])
    op.create_table(
        "account_import_rows",
        sa.Column("run_id", BigId, primary_key=True),
        sa.Column("line", BigId, primary_key=True),
        sa.Column("bhxh_code", sa.String(10), nullable=False),
        sa.Column("citizen_id_sealed", sa.String(80), nullable=True),
        sa.Column("citizen_id_index", sa.String(64), nullable=True),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("search_key", sa.String(200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("gender", sa.String(6), nullable=False),
        sa.Column("phone", sa.String(15), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("rejected", sa.String(60), nullable=True),
        prefixes=["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else [],
    )


def downgrade() -> None:
    op.drop_table("account_import_rows")
    op.drop_table("import_runs")
