"""Alembic environment: runs migrations on the async engine of the configured database.

A caller that already holds a connection (tests, the schema check) passes it in
`config.attributes["connection"]`; otherwise the URL comes from the `sqlalchemy.url` option.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from vssid_broker.db import create_engine
from vssid_broker.models import metadata

config = context.config


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Rebuilding a table drops the old one, and with foreign keys on, SQLite deletes the
        # rows that reference it (ON DELETE CASCADE) first. The pragma only takes effect
        # outside a transaction, so callers hand over a connection that has not begun one.
        _sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=sqlite,
        compare_type=True,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                raise RuntimeError("a migration left rows whose foreign key has no parent")
        if sqlite:  # one transaction (begun by the first statement), committed here
            connection.commit()
    finally:
        if sqlite:
            if connection.in_transaction():
                connection.rollback()
            _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    if connection.in_transaction():
        raise RuntimeError("migrate SQLite on a connection outside a transaction")
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


async def _run_with_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


given: Connection | None = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_with_engine(config.get_main_option("sqlalchemy.url") or ""))
