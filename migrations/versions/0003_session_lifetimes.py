"""Session lifetimes and revocation: idle timeout, CSRF token, session ids, DPoP, used jtis

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Browser sessions last hours; the new columns have no honest value for the old rows, so
    # the upgrade signs browsers out once instead of inventing CSRF tokens and ids.
    op.execute("DELETE FROM browser_sessions")
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.String(length=36), nullable=False))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False))
        batch_op.add_column(sa.Column("csrf_token", sa.String(length=64), nullable=False))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("vneid_id_token_sealed", sa.Text(), nullable=True))
        batch_op.create_unique_constraint("uq_browser_sessions_public_id", ["public_id"])

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_agent", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=64), nullable=True))

    op.create_table(
        "used_jtis",
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "jti", name="pk_used_jtis"),
    )
    with op.batch_alter_table("used_jtis", schema=None) as batch_op:
        batch_op.create_index("ix_used_jtis_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("used_jtis", schema=None) as batch_op:
        batch_op.drop_index("ix_used_jtis_expires_at")
    op.drop_table("used_jtis")

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
        batch_op.drop_column("user_agent")

    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_browser_sessions_public_id", type_="unique")
        batch_op.drop_column("vneid_id_token_sealed")
        batch_op.drop_column("user_agent")
        batch_op.drop_column("csrf_token")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("public_id")
