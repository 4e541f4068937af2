"""Records without a citizen ID are looked up by birth date and normalized name

Linking rule 3 used to read the first 20 records of a birth date and compare names in Python:
with 20 or more others ahead of theirs, a person's record was never seen. `name_key` holds the
name as rules compare it (NFC, case-folded, single spaces) and the partial index covers both.

Only rows without a citizen ID are backfilled here (the only rows rule 3 reads); every row
written from now on carries its key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 08:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vssid_broker.identifiers import normalized_name

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX = "ix_accounts_unverified_birth_date"
NEW_INDEX = "ix_accounts_unverified_birth_date_name"
BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("name_key", sa.String(200), nullable=True))
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.BigInteger),
        sa.column("full_name", sa.String),
        sa.column("name_key", sa.String),
        sa.column("citizen_id", sa.String),
    )
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(accounts.c.id, accounts.c.full_name)
            .where(accounts.c.citizen_id.is_(None), accounts.c.id > last_id)
            .order_by(accounts.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            sa.update(accounts)
            .where(accounts.c.id == sa.bindparam("row_id"))
            .values(name_key=sa.bindparam("key")),
            [{"row_id": row.id, "key": normalized_name(row.full_name)} for row in rows],
        )
        last_id = rows[-1].id
    op.drop_index(OLD_INDEX, table_name="accounts")
    op.create_index(
        NEW_INDEX,
        "accounts",
        ["birth_date", "name_key"],
        sqlite_where=sa.text("citizen_id IS NULL"),
        postgresql_where=sa.text("citizen_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(NEW_INDEX, table_name="accounts")
    op.create_index(
        OLD_INDEX,
        "accounts",
        ["birth_date"],
        sqlite_where=sa.text("citizen_id IS NULL"),
        postgresql_where=sa.text("citizen_id IS NULL"),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("name_key")
