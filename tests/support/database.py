"""Which database the suite runs on, and how to empty it between tests.

`VSSID_TEST_DATABASE_URL` selects the kind (CI runs the suite once on SQLite and once on
PostgreSQL); without it the suite uses a fresh SQLite file. On PostgreSQL the URL names a
server and a database to connect to, nothing more: each run (each xdist worker) creates a
database of its own there (`vssid_test_<pid>_<random>`), migrates it and drops it at the end.
The database the URL names is used only to run CREATE DATABASE and DROP DATABASE: not one of
its tables is read, written or dropped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from vssid_broker.audit import append_only
from vssid_broker.db import create_engine
from vssid_broker.models import metadata

EXPLICIT_URL = "VSSID_TEST_DATABASE_URL"
NAME_PREFIX = "vssid_test_"
"""The start of every database the suite creates (and the only ones it drops)."""

# Every table holds per-test data except the signing keys, which a running broker caches.
KEPT_TABLES = frozenset({"signing_keys"})


def data_tables() -> list[str]:
    """Children before parents, so deleting in this order never trips a foreign key."""
    return [t.name for t in reversed(metadata.sorted_tables) if t.name not in KEPT_TABLES]


def new_database_name(purpose: str = "") -> str:
    """`vssid_test_<pid>_<random>[_purpose]`: no two runs or workers share one."""
    suffix = f"_{purpose}" if purpose else ""
    return f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}{suffix}"


@contextlib.asynccontextmanager
async def own_database(server_url: str, name: str) -> AsyncIterator[str]:
    """Create the PostgreSQL database `name` on the server of `server_url` (connected to the
    database that URL names, for CREATE/DROP only); yield its URL; drop it at exit, whoever
    is still connected to it."""
    if not name.startswith(NAME_PREFIX):
        raise ValueError(f"the suite creates and drops only databases named {NAME_PREFIX}*")
    admin = create_engine(server_url, pool_size=1, max_overflow=0)
    try:
        async with admin.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(server_url).set(database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def suite_database(tmp_dir: Path) -> AsyncIterator[str]:
    """The run's database URL: a fresh SQLite file in `tmp_dir`, or a PostgreSQL database of
    the run's own on the server `VSSID_TEST_DATABASE_URL` names."""
    explicit = os.environ.get(EXPLICIT_URL)
    if explicit and explicit.startswith("postgresql"):
        async with own_database(explicit, new_database_name()) as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{tmp_dir / 'broker-test.sqlite3'}"


def postgresql_only(database_url: str, why: str) -> None:
    """Skip the calling test on SQLite: what it tests exists only on PostgreSQL."""
    if not database_url.startswith("postgresql"):
        pytest.skip(f"{why}: the PostgreSQL run of the suite")


async def empty_data_tables(engine: AsyncEngine) -> None:
    """The audit trail refuses to be emptied (`audit.append_only`): its triggers are lifted for
    the cleanup only, inside the same transaction."""
    if engine.dialect.name != "postgresql":
        await _empty(engine)
        return
    await end_forgotten_transactions(engine, idle_seconds=5)
    try:
        await _empty(engine, lock_timeout="15s")
    except DBAPIError:  # a lock still held: whatever holds it is forgotten by now
        await end_forgotten_transactions(engine, idle_seconds=0)
        await _empty(engine)


async def _empty(engine: AsyncEngine, lock_timeout: str | None = None) -> None:
    async with engine.begin() as connection:
        if lock_timeout is not None:
            await connection.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        await connection.run_sync(append_only.remove)
        # DELETE, on PostgreSQL too: a test leaves a few rows, and TRUNCATE of every table
        # (a new file for each, whatever it held) cost more than deleting them. Identities
        # carry on from test to test, so a test names the rows it made by what it was given.
        for table in data_tables():
            await connection.execute(text(f"DELETE FROM {table}"))
        await connection.run_sync(append_only.install)


async def end_forgotten_transactions(engine: AsyncEngine, idle_seconds: int) -> None:
    """A transaction left open by the test before (idle `idle_seconds` or more) would hold its locks
    and stall every cleanup after it, turning one defect into a run of timeouts: it is ended,
    and said as a warning naming its last statement, so the defect stays visible."""
    async with engine.connect() as connection:
        forgotten = (
            await connection.execute(
                text(
                    "SELECT pid, left(query, 200) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state = 'idle in transaction' "
                    "AND state_change <= now() - make_interval(secs => :idle)"
                ),
                {"idle": float(idle_seconds)},
            )
        ).all()
        for pid, query in forgotten:
            warnings.warn(f"a transaction was left open after: {query}", stacklevel=2)
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
