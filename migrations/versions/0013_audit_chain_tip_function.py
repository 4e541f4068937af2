"""The audit chain's lock and tip in one round trip (PostgreSQL)

Appending to the audit chain takes a transaction-scoped advisory lock, then reads the newest
entry's hash (`audit/chain.py`). Two statements meant two round trips while holding the lock
that every audited transaction of every process waits for. This function does both in one
call: it takes the lock, then reads the tip; being VOLATILE, each query in it runs with a fresh
snapshot (READ COMMITTED), so the read sees the entry the previous holder committed just before
releasing the lock, exactly as a separate statement after the lock did. SQLite serialises
writers with BEGIN IMMEDIATE and needs none of this.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 12:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE FUNCTION vssid_audit_chain_tip(lock_key bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tip text;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT entry_hash INTO tip FROM audit_events ORDER BY id DESC LIMIT 1;
    IF tip IS NULL THEN
        -- Everything before a purge is gone: the chain goes on from its checkpoint.
        SELECT last_entry_hash INTO tip FROM audit_checkpoints ORDER BY id DESC LIMIT 1;
    END IF;
    RETURN tip;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(UPGRADE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION vssid_audit_chain_tip(bigint)")
