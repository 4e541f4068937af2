"""Staff find a person by the start of their name typed without diacritics

The console's search compared `name_key`, where diacritics count (as linking must): a clerk
typing "pham thi dung" found nothing. `search_key` holds the name with diacritics, case and
spacing folded (`identifiers.searchable_name`); a prefix is a range of its index. On
PostgreSQL the column compares in byte order (collation "C"), as SQLite does by default, so
the range holds whatever the database's own collation.

Every row is backfilled in batches, by primary key.

Revision ID: 0019
Revises: 0013
Create Date: 2026-12-07 04:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from vssid_broker.identifiers import searchable_name

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_accounts_search_key"
BATCH = 5_000
SEARCH_KEY = sa.String(200).with_variant(postgresql.VARCHAR(200, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("search_key", SEARCH_KEY, nullable=True))
    accounts = sa.table(
        "accounts",
        sa.column("id", sa.BigInteger),
        sa.column("full_name", sa.String),
        sa.column("search_key", sa.String),
    )
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(accounts.c.id, accounts.c.full_name)
            .where(accounts.c.id > last_id)
            .order_by(accounts.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            sa.update(accounts)
            .where(accounts.c.id == sa.bindparam("row_id"))
            .values(search_key=sa.bindparam("key")),
            [{"row_id": row.id, "key": searchable_name(row.full_name)} for row in rows],
        )
        last_id = rows[-1].id
    op.create_index(INDEX, "accounts", ["search_key"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="accounts")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("search_key")
