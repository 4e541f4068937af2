"""The database itself refuses to change or remove audit entries.

Triggers on `audit_events` refuse every UPDATE, and every DELETE except of entries at or
before the newest purge checkpoint (`AuditCheckpoint`: `vssid-broker purge` writes it first,
with the hash of the last entry it removes). They stop a mistake or a stray statement from
the broker's own connection; on PostgreSQL the service role's grants (`vssid-broker db grant`,
`database_roles`) stop the broker's role outright (it may only INSERT and SELECT), and `audit
verify` (with anchors, `audit.anchors`) finds what an owner of the database did around both.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

REFUSAL = "audit_events is append-only"

SQLITE_INSTALL = (
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN OLD.id > (SELECT COALESCE(MAX(last_event_id), 0) FROM audit_checkpoints)
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
    """,
)
SQLITE_REMOVE = (
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
)

POSTGRESQL_INSTALL = (
    """
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND OLD.id <= (
            SELECT COALESCE(MAX(last_event_id), 0) FROM audit_checkpoints
        ) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
    """
    CREATE FUNCTION audit_events_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_no_truncate()
    """,
)
POSTGRESQL_REMOVE = (
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP FUNCTION IF EXISTS audit_events_no_truncate()",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
)


def install(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    for statement in POSTGRESQL_INSTALL if postgres else SQLITE_INSTALL:
        connection.execute(text(statement))


def remove(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    for statement in POSTGRESQL_REMOVE if postgres else SQLITE_REMOVE:
        connection.execute(text(statement))
