"""Alembic, driven from code: `vssid-broker migrate` and the start-up check both live here.

Migrations are the only way a schema comes to be; the server refuses a database that is not
at the latest revision rather than guess at what it holds.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# The project's top-level `migrations/`, installed as the package `vssid_broker.migrations` (see
# pyproject.toml), so `vssid-broker migrate` works from a wheel as from a checkout.
MIGRATIONS_DIR = Path(import_module("vssid_broker.migrations").__path__[0])


class SchemaNotCurrent(RuntimeError):
    """The database is missing, behind or ahead of the code's migrations."""


def alembic_config(database_url: str = "", connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates '%', which URL-encoded passwords contain.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade through an existing engine (for callers already inside an event loop). The
    connection is handed over before any transaction: migrations/env.py begins it."""
    async with engine.connect() as connection:
        await connection.run_sync(
            lambda sync: command.upgrade(alembic_config(connection=sync), revision)
        )


async def downgrade_engine(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.connect() as connection:
        await connection.run_sync(
            lambda sync: command.downgrade(alembic_config(connection=sync), revision)
        )


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def require_current_schema(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        state = "has no schema" if current is None else f"is at revision {current}"
        raise SchemaNotCurrent(
            f"The database {state}, but this version of vssid-broker needs revision {head}. "
            "Run `vssid-broker migrate` first."
        )
