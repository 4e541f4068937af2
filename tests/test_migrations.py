"""Migrations are the only way a schema comes to be, and they go both ways."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import new_database_name, own_database
from vssid_broker import schema
from vssid_broker.app import create_app
from vssid_broker.config import Settings
from vssid_broker.db import Base, create_engine
from vssid_broker.models import metadata


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


@pytest.fixture
async def scratch_engine(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of the suite's kind, the test's own (the running broker's database
    is left alone): a new SQLite file, or a new PostgreSQL database dropped after the test."""
    async with contextlib.AsyncExitStack() as stack:
        if database_url.startswith("sqlite"):
            url = f"sqlite+aiosqlite:///{tmp_path / 'scratch.sqlite3'}"
        else:
            url = await stack.enter_async_context(
                own_database(database_url, new_database_name("scratch"))
            )
        scratch = create_engine(url)
        stack.push_async_callback(scratch.dispose)
        yield scratch


async def test_upgrade_creates_every_table_and_downgrade_removes_them(
    scratch_engine: AsyncEngine,
) -> None:
    await schema.upgrade_engine(scratch_engine)
    assert await table_names(scratch_engine) == set(metadata.tables) | {"alembic_version"}
    assert await schema.current_revision(scratch_engine) == schema.head_revision()

    await schema.downgrade_engine(scratch_engine, "base")
    assert await table_names(scratch_engine) <= {"alembic_version"}

    await schema.upgrade_engine(scratch_engine)  # and up again, cleanly
    assert await table_names(scratch_engine) == set(metadata.tables) | {"alembic_version"}


async def test_models_and_migrations_agree(scratch_engine: AsyncEngine) -> None:
    """Autogenerate finds nothing to add: the models hold no change a migration lacks."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    await schema.upgrade_engine(scratch_engine)
    async with scratch_engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []


async def test_server_refuses_to_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}",
        key_encryption_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    app = create_app(settings)
    with pytest.raises(schema.SchemaNotCurrent, match="Run `vssid-broker migrate`"):
        async with app.router.lifespan_context(app):
            pass
