"""The database says when a live session may have ended (PostgreSQL LISTEN/NOTIFY)

Each broker process keeps the answers of its access-token check (`LIVE_SESSION_ACCOUNT`: the
token's refresh family is live and its account active, with the account's row) in memory
(`sessions/live_cache.py`). These triggers notify the channel `vssid_live_sessions` whenever
something that query reads changes, whoever changes it, so no code path can forget:

- `f:<family id>`: the newest token of a family (the only one not rotated, the one the query
  reads) is revoked, moves to another family or account, or is deleted;
- `a:<account id>`: an account row is updated (its status, or any field the answer carries)
  or deleted;
- `*`: a TRUNCATE, or a statement changing more than a thousand rows: forget everything.

Payloads are ids only, never a citizen ID. A rotation, which sets `rotated_at` on every use of
a refresh token, is filtered out by the row trigger's WHEN clause before any function runs: the
same statement inserts the family's next token, so the family stays live.
Statement triggers with transition tables serve the rare bulk changes (a purge, a re-seal of
every account) with one call each. SQLite (the embedded demo, one process) keeps no cache:
nothing to do there.

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-29 11:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = (
    """
    CREATE FUNCTION vssid_live_sessions_changed(prefix text, ids text[]) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        IF cardinality(ids) > 1000 THEN
            PERFORM pg_notify('vssid_live_sessions', '*');
        ELSE
            PERFORM pg_notify('vssid_live_sessions', prefix || id) FROM unnest(ids) AS id;
        END IF;
    END
    $$
    """,
    """
    CREATE FUNCTION vssid_live_family_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('vssid_live_sessions', 'f:' || OLD.family_id);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER refresh_tokens_live_family_revoked AFTER UPDATE ON refresh_tokens
    FOR EACH ROW
    WHEN (
        OLD.rotated_at IS NULL AND (
            (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
            OR NEW.family_id IS DISTINCT FROM OLD.family_id
            OR NEW.account_id IS DISTINCT FROM OLD.account_id
        )
    )
    EXECUTE FUNCTION vssid_live_family_revoked()
    """,
    """
    CREATE FUNCTION vssid_live_families_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM vssid_live_sessions_changed('f:', ARRAY(
            SELECT DISTINCT family_id FROM changed
            WHERE rotated_at IS NULL AND revoked_at IS NULL
        ));
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER refresh_tokens_live_families_deleted AFTER DELETE ON refresh_tokens
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION vssid_live_families_deleted()
    """,
    """
    CREATE FUNCTION vssid_live_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM vssid_live_sessions_changed('a:', ARRAY(SELECT id::text FROM changed));
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER accounts_live_sessions_updated AFTER UPDATE ON accounts
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION vssid_live_accounts_changed()
    """,
    """
    CREATE TRIGGER accounts_live_sessions_deleted AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION vssid_live_accounts_changed()
    """,
    """
    CREATE FUNCTION vssid_live_sessions_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('vssid_live_sessions', '*');
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER refresh_tokens_live_sessions_truncated AFTER TRUNCATE ON refresh_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION vssid_live_sessions_truncated()
    """,
    """
    CREATE TRIGGER accounts_live_sessions_truncated AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION vssid_live_sessions_truncated()
    """,
)

DOWNGRADE = (
    "DROP TRIGGER IF EXISTS accounts_live_sessions_truncated ON accounts",
    "DROP TRIGGER IF EXISTS refresh_tokens_live_sessions_truncated ON refresh_tokens",
    "DROP TRIGGER IF EXISTS accounts_live_sessions_deleted ON accounts",
    "DROP TRIGGER IF EXISTS accounts_live_sessions_updated ON accounts",
    "DROP TRIGGER IF EXISTS refresh_tokens_live_families_deleted ON refresh_tokens",
    "DROP TRIGGER IF EXISTS refresh_tokens_live_family_revoked ON refresh_tokens",
    "DROP FUNCTION IF EXISTS vssid_live_sessions_truncated()",
    "DROP FUNCTION IF EXISTS vssid_live_accounts_changed()",
    "DROP FUNCTION IF EXISTS vssid_live_families_deleted()",
    "DROP FUNCTION IF EXISTS vssid_live_family_revoked()",
    "DROP FUNCTION IF EXISTS vssid_live_sessions_changed(text, text[])",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
