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
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


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
