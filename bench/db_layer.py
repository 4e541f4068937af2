"""What one statement costs the broker's process, layer by layer (client CPU, not PostgreSQL's).

    python3 bench/db_layer.py [--database-url URL] [--count 3000]

Reads one account by primary key, repeatedly, through: an ORM session (`session.get`), an ORM
session executing a prebuilt Core statement (as the broker's autocommit sessions do, and with
autocommit set per connection instead of by the engine option), an `AsyncConnection` from the
autocommit engine option, and asyncpg's own pool. The differences are the per-statement
overhead the profiles in docs/performance.md attribute to the SQLAlchemy asyncio layer. Needs
a migrated, seeded database (the benchmark's `vssid_bench` after a run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable


async def measure(name: str, count: int, operation: Callable[[], Awaitable[object]]) -> None:
    for _ in range(200):  # warm the pools and statement caches
        await operation()
    started = time.process_time()
    for _ in range(count):
        await operation()
    print(f"{name:<48} {(time.process_time() - started) / count * 1e6:7.0f} µs CPU per statement")


async def main(url: str, count: int) -> None:
    import asyncpg
    from sqlalchemy import bindparam, select
    from sqlalchemy.ext.asyncio import AsyncSession

    from vssid_broker.accounts.models import Account
    from vssid_broker.db import autocommit_session_factory, create_engine

    engine = create_engine(url)
    sessions = autocommit_session_factory(engine)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    by_id = select(Account.__table__).where(Account.id == bindparam("account_id"))
    pool = await asyncpg.create_pool(
        url.replace("postgresql+asyncpg://", "postgresql://"), min_size=1, max_size=1
    )
    account_id = 1

    async def orm_get() -> object:
        async with sessions() as session:
            return await session.get(Account, account_id)

    async def session_core() -> object:
        async with sessions() as session:
            connection = await session.connection()
            return (await connection.execute(by_id, {"account_id": account_id})).first()

    async def session_own_isolation() -> object:
        # The same, with autocommit set on this connection only: no engine-wide event listener.
        async with AsyncSession(engine, expire_on_commit=False) as session:
            connection = await session.connection(
                execution_options={"isolation_level": "AUTOCOMMIT"}
            )
            return (await connection.execute(by_id, {"account_id": account_id})).first()

    async def connection_core() -> object:
        async with autocommit.connect() as connection:
            return (await connection.execute(by_id, {"account_id": account_id})).first()

    async def asyncpg_pool() -> object:
        async with pool.acquire() as connection:
            return await connection.fetchrow("SELECT * FROM accounts WHERE id = $1", account_id)

    try:
        await measure("ORM session.get", count, orm_get)
        await measure("ORM session, prebuilt Core statement", count, session_core)
        await measure("same, autocommit set per connection", count, session_own_isolation)
        await measure("AsyncConnection, prebuilt Core statement", count, connection_core)
        await measure("asyncpg pool, same SQL", count, asyncpg_pool)
    finally:
        await pool.close()
        await engine.dispose()


if __name__ == "__main__":
    from run import reexec_in_venv  # the harness's: runs us under the project's .venv

    reexec_in_venv()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/vssid_bench"
        ),
    )
    parser.add_argument("--count", type=int, default=3000)
    options = parser.parse_args()
    asyncio.run(main(options.database_url, options.count))
