"""The broker serves as a role that cannot touch the schema or the audit trail's past: the role
split `vssid-broker db grant` (and `migrate` with VSSID_DATABASE_SERVICE_ROLE) applies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Stack
from tests.support.http import AsyncClient
from tests.test_audit_chain import verified, write_events
from tests.test_cli import cli_env, run_cli, serve_env
from tests.test_privacy_api import app_login
from vssid_broker.cli.db import grant
from vssid_broker.database_roles import RoleRefused
from vssid_broker.db import create_engine

REFUSED = [
    "UPDATE audit_events SET outcome = 'denied'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "INSERT INTO audit_checkpoints (created_at, last_event_id, last_entry_hash, events_removed)"
    " VALUES (now(), 1000000, 'x', 0)",
    "UPDATE audit_checkpoints SET last_event_id = 1000000",
    "DELETE FROM audit_checkpoints",
    "TRUNCATE audit_checkpoints",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "SET session_replication_role = replica",
    "CREATE TABLE stash (id int)",
    "DROP TABLE audit_checkpoints",
    "UPDATE alembic_version SET version_num = '0001'",
]


@pytest.fixture
async def service_role(stack: Stack, engine: AsyncEngine) -> AsyncIterator[str]:
    """A role of this run's own (roles are cluster-wide), granted as `db grant` does; its
    database URL. Dropped afterwards."""
    if engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's; SQLite has none (test_db_grant_on_sqlite_says_so)")
    role = f"vssid_app_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    await grant(stack.settings, role, password)
    await grant(stack.settings, role)  # again: idempotent
    url = make_url(stack.settings.database_url).set(username=role, password=password)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP OWNED BY {role}"))
            await connection.execute(text(f"DROP ROLE {role}"))


@pytest.mark.parametrize("statement", REFUSED)
async def test_the_service_role_cannot_rewrite_the_audit_trail_or_the_schema(
    stack: Stack, service_role: str, statement: str
) -> None:
    await write_events(stack, 3)
    as_service = create_engine(service_role)
    try:
        with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
            async with as_service.begin() as connection:
                await connection.execute(text(statement))
        async with as_service.begin() as connection:  # what it may do: read and append
            assert await connection.scalar(text("SELECT count(*) FROM audit_events")) == 3
    finally:
        await as_service.dispose()
    assert await verified(stack) == (3, None)


async def test_a_login_works_end_to_end_with_the_broker_serving_as_the_service_role(
    stack: Stack, service_role: str
) -> None:
    before = len(await write_events(stack, 0))
    with stack.broker_with(database_url=service_role) as broker:
        stack.broker = broker
        headers = await app_login(stack, "001085012345")
        async with AsyncClient() as client:
            me = await client.get(f"{broker}/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    after = await write_events(stack, 0)
    assert len(after) > before  # the login was audited, by the service role, on the chain
    assert await verified(stack) == (len(after), None)


@pytest.mark.timeout(300)  # a command run in its own process
async def test_migrate_grants_the_service_role_it_is_told_of(
    stack: Stack, service_role: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    role = make_url(service_role).username
    async with engine.begin() as connection:  # as if a new table came without its grants
        await connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"))
    as_service = create_engine(service_role)
    try:
        with pytest.raises(DBAPIError, match="permission denied"):
            async with as_service.connect() as connection:
                await connection.execute(text("SELECT count(*) FROM accounts"))
        done = run_cli(
            "migrate", env=serve_env(stack, tmp_path, public_port=8000,
                                     VSSID_DATABASE_SERVICE_ROLE=str(role)),
            cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"role {role} granted on" in done.stdout
        async with as_service.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM accounts")) > 0
    finally:
        await as_service.dispose()


async def test_grant_refuses_a_role_that_could_undo_it(stack: Stack, engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    owner = make_url(stack.settings.database_url).username
    assert owner is not None
    with pytest.raises(RoleRefused, match=r"superuser|owner"):
        await grant(stack.settings, owner)
    with pytest.raises(RoleRefused, match="does not exist"):
        await grant(stack.settings, f"vssid_nobody_{secrets.token_hex(4)}")


def test_db_grant_on_sqlite_says_so_in_one_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    done = run_cli("db", "grant", "--service-role", "vssid_app", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "db grant is for PostgreSQL: the embedded SQLite database has no roles "
        "(whoever can open its file can change it)"
    )
