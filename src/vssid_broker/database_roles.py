"""The role split on PostgreSQL: the owner migrates, the service runs with less.

The tables' owner can do anything to them: alter them, disable the audit trail's triggers,
switch triggers off for a whole session (`session_replication_role`), write purge checkpoints
and then delete the audit entries behind them. So the owner only runs the migrations (and the
purge, which writes those checkpoints); the serving broker connects as a role that `grant`
gives exactly what serving needs:

- every table: SELECT, INSERT, UPDATE, DELETE, except
- `audit_events`: SELECT and INSERT only (no UPDATE, DELETE or TRUNCATE);
- `audit_checkpoints` and `alembic_version`: SELECT only;
- the sequences: USAGE and SELECT; no CREATE on the schema.

Not owning a table, it cannot ALTER it or disable its triggers; not a superuser, it cannot set
`session_replication_role`. `grant` refuses a role that could do those anyway (a superuser, the
owner itself or a member of it). It starts from REVOKE ALL, so it is safe to run again, and
after every migration (new tables get their grants; `vssid-broker migrate` does it when
VSSID_DATABASE_SERVICE_ROLE is set).
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

READ_ONLY_TABLES = ("audit_checkpoints", "alembic_version")
APPEND_ONLY_TABLES = ("audit_events",)
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RoleRefused(RuntimeError):
    """The service role cannot be given its grants as asked; the message says why."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def grant_service_role(
    connection: AsyncConnection, role: str, *, create_with_password: str | None = None
) -> list[str]:
    """Give `role` the service's privileges and no more, as the tables' owner; the tables
    granted to, in order. With `create_with_password`, a missing role is created first (the
    owner needs CREATEROLE for that)."""
    if connection.dialect.name != "postgresql":
        raise RoleRefused(
            "db grant is for PostgreSQL: the embedded SQLite database has no roles "
            "(whoever can open its file can change it)"
        )
    if not ROLE_NAME.fullmatch(role):
        raise RoleRefused(f"{role!r} is not a role name (lower-case letters, digits and _)")
    found = (
        await connection.execute(
            text(
                "SELECT rolsuper OR rolbypassrls, "
                "pg_has_role(rolname, current_user, 'MEMBER') OR rolname = current_user "
                "FROM pg_roles WHERE rolname = :role"
            ),
            {"role": role},
        )
    ).first()
    if found is None:
        if create_with_password is None:
            raise RoleRefused(
                f"role {role} does not exist: create it (CREATE ROLE {role} LOGIN PASSWORD ...) "
                "or pass --create"
            )
        # A role's password cannot be a bound parameter; quote it as a literal.
        literal = "'" + create_with_password.replace("'", "''") + "'"
        await connection.execute(text(f"CREATE ROLE {_quoted(role)} LOGIN PASSWORD {literal}"))
    elif found[0]:
        raise RoleRefused(
            f"role {role} is a superuser or bypasses row security: it can do anything"
        )
    elif found[1]:
        raise RoleRefused(
            f"role {role} is the tables' owner or a member of it: it could change the schema "
            "and the audit trail; give the service a role of its own"
        )
    who = _quoted(role)
    schema = await connection.scalar(text("SELECT current_schema()"))
    database = await connection.scalar(text("SELECT current_database()"))
    tables = list(
        await connection.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :schema ORDER BY tablename"),
            {"schema": schema},
        )
    )
    in_schema = _quoted(str(schema))
    statements = [
        f"GRANT CONNECT ON DATABASE {_quoted(str(database))} TO {who}",
        f"REVOKE CREATE ON SCHEMA {in_schema} FROM PUBLIC",
        f"REVOKE ALL ON SCHEMA {in_schema} FROM {who}",
        f"GRANT USAGE ON SCHEMA {in_schema} TO {who}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {in_schema} FROM {who}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {in_schema} FROM {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {in_schema} TO {who}",
    ]
    for table in tables:
        if table in READ_ONLY_TABLES:
            privileges = "SELECT"
        elif table in APPEND_ONLY_TABLES:
            privileges = "SELECT, INSERT"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        statements.append(f"GRANT {privileges} ON TABLE {in_schema}.{_quoted(table)} TO {who}")
    for statement in statements:
        await connection.execute(text(statement))
    return tables
