"""Migrations are the only way a schema comes to be, and they go both ways."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import reset_schema
from vssid_broker import schema
from vssid_broker.app import create_app
from vssid_broker.config import Settings
from vssid_broker.db import Base, create_engine, session_factory, utcnow
from vssid_broker.models import metadata
from vssid_broker.sessions.keys import SigningKeys, load_key_encryption_key


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


@pytest.fixture
async def scratch_engine(
    database_url: str, tmp_path: Path, engine: AsyncEngine, broker_settings: Settings
) -> AsyncIterator[AsyncEngine]:
    """The suite's database type, emptied; put back as the running broker expects it after."""
    if database_url.startswith("sqlite"):
        scratch = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scratch.sqlite3'}")
        yield scratch
        await scratch.dispose()
    else:
        await reset_schema(engine)
        yield engine
        await reset_schema(engine)
        await schema.upgrade_engine(engine)
        # The suite's broker started with a signing key; the reset took it away.
        keys = SigningKeys(broker_settings, load_key_encryption_key(broker_settings))
        async with session_factory(engine).begin() as session:
            await keys.ensure_active(session, utcnow())


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
