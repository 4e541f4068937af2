"""Which database the suite runs on, and how to empty it between tests.

`VSSID_TEST_DATABASE_URL` selects it (CI runs the suite once on SQLite and once on
PostgreSQL); without it the suite uses a fresh SQLite file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from vssid_broker.audit import append_only
from vssid_broker.models import metadata

# Every table holds per-test data except the signing keys, which a running broker caches.
KEPT_TABLES = frozenset({"signing_keys"})


def data_tables() -> list[str]:
    """Children before parents, so deleting in this order never trips a foreign key."""
    return [t.name for t in reversed(metadata.sorted_tables) if t.name not in KEPT_TABLES]


def test_database_url(tmp_dir: Path) -> str:
    return os.environ.get("VSSID_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp_dir / 'broker-test.sqlite3'}"
    )


def postgresql_only(database_url: str, why: str) -> None:
    """Skip the calling test on SQLite: what it tests exists only on PostgreSQL."""
    if not database_url.startswith("postgresql"):
        pytest.skip(f"{why}: the PostgreSQL run of the suite")


async def reset_schema(engine: AsyncEngine) -> None:
    """Drop everything, including Alembic's version table, so migrations start from nothing."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        else:
            names = await connection.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )
            )
            for (name,) in list(names):
                await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


async def empty_data_tables(engine: AsyncEngine) -> None:
    """The audit trail refuses to be emptied (`audit.append_only`): its triggers are lifted for
    the cleanup only, inside the same transaction."""
    async with engine.begin() as connection:
        await connection.run_sync(append_only.remove)
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text(f"TRUNCATE {', '.join(data_tables())} RESTART IDENTITY CASCADE")
            )
        else:
            for table in data_tables():
                await connection.execute(text(f"DELETE FROM {table}"))
        await connection.run_sync(append_only.install)
