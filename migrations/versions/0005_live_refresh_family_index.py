"""The newest token of each refresh family, indexed on its own

Every API call asks whether its token's family is live. A family keeps a row per rotation (a
rotated token coming back must be recognised), so the family index alone walks them all; the
newest token is the only one not rotated, and this partial index holds just that row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 22:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_refresh_tokens_live_family"


def upgrade() -> None:
    # A large refresh_tokens table may get the index beforehand without blocking writes:
    #   CREATE INDEX CONCURRENTLY ix_refresh_tokens_live_family
    #     ON refresh_tokens (family_id) WHERE rotated_at IS NULL;
    # this migration then finds it and moves on.
    op.create_index(
        INDEX,
        "refresh_tokens",
        ["family_id"],
        sqlite_where=sa.text("rotated_at IS NULL"),
        postgresql_where=sa.text("rotated_at IS NULL"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="refresh_tokens")
