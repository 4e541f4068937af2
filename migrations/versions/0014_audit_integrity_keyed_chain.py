"""The audit chain keyed: each entry names the chain key its link was made with

From here on every link is an HMAC under a key derived from the key-encryption key
(`audit/chain.py`), which the database never holds. Entries already written keep their plain
SHA-256 links and no key id; the first entry with a key id is the switch-over point, and
`audit verify` refuses an unkeyed entry after it. A nullable column: no row is rewritten (the
table refuses UPDATE), and on SQLite it is a plain ADD COLUMN, which keeps the table's triggers.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("chain_key_id", sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_events", "chain_key_id")
