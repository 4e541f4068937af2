"""Loading many rows into PostgreSQL from several processes at once.

The SQL here is built from names this module and PostgreSQL's catalog give, never from input.

The loaded tables' secondary indexes, unique constraints and foreign keys are dropped before the
load and built once after it: a B-tree built from sorted data costs a fraction of one grown row
by row at random keys (the blind index of a citizen ID is random by design), and a foreign-key
check per row costs a lookup. What has to be rebuilt is written to a table of its own in the
same transaction that drops it, and is deleted only in the transaction that rebuilds it, so a
load killed mid-way is repaired by the next one (`restore_deferred`).

Each chunk is made and written by a worker process (spawned, so nothing of the parent's event
loop or connections is inherited) in its own transaction; the parent only counts. If any chunk
fails, the rows already written are deleted (`undo`) before the indexes come back, so a failed
load leaves the tables as they were.

Two loads use it: the synthetic bulk seed (`seeding.bulk`, chunks it makes up) and the accounts
import (`admin.account_import`, slices of the agency's file read, checked and COPYed into the
staging table by the workers; its own merge drops and rebuilds the indexes of a first load).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

DEFERRED_TABLE = "bulk_load_deferred_ddl"
APPLICATION_NAME = "vssid-bulk-load"

WriteChunk = Callable[[Any, Any, Any], Awaitable[Any]]
"""(asyncpg connection or None, plan, chunk: its number or its data) → what the chunk wrote
(picklable)."""

_CONSTRAINTS = text(
    """
    SELECT c.conrelid::regclass::text AS table_name, c.conname AS name, c.contype AS kind,
           pg_get_constraintdef(c.oid) AS definition
    FROM pg_constraint c
    WHERE c.conrelid::regclass::text = ANY(:tables) AND c.contype IN ('u', 'f')
    ORDER BY c.contype DESC, c.conname
    """
)
_PLAIN_INDEXES = text(
    """
    SELECT i.indrelid::regclass::text AS table_name, ic.relname AS name,
           pg_get_indexdef(i.indexrelid) AS definition
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid::regclass::text = ANY(:tables) AND NOT i.indisprimary
      AND NOT EXISTS (
        SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
      )
    ORDER BY ic.relname
    """
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def defer_constraints(connection: AsyncConnection, tables: Sequence[str]) -> int:
    """Drop the tables' secondary indexes, unique constraints and foreign keys, remembering how
    to rebuild them; returns how many were dropped. Runs in the caller's transaction."""
    await connection.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {DEFERRED_TABLE}"
            " (position serial PRIMARY KEY, restore text NOT NULL)"
        )
    )
    constraints = (await connection.execute(_CONSTRAINTS, {"tables": list(tables)})).all()
    indexes = (await connection.execute(_PLAIN_INDEXES, {"tables": list(tables)})).all()
    # Rebuilt in this order: indexes, unique constraints, then the foreign keys that may lean
    # on them; dropped in the reverse order.
    restores = [row.definition for row in indexes] + [
        f"ALTER TABLE {row.table_name} ADD CONSTRAINT {_quoted(row.name)} {row.definition}"
        for row in sorted(constraints, key=lambda row: row.kind == "f")
    ]
    drops = [
        f"ALTER TABLE {row.table_name} DROP CONSTRAINT {_quoted(row.name)}"
        for row in sorted(constraints, key=lambda row: row.kind != "f")
    ] + [f"DROP INDEX {_quoted(row.name)}" for row in indexes]
    for statement in restores:
        await connection.execute(
            text(f"INSERT INTO {DEFERRED_TABLE} (restore) VALUES (:restore)"),  # noqa: S608
            {"restore": statement},
        )
    for statement in drops:
        await connection.execute(text(statement))
    return len(drops)


async def restore_deferred(connection: AsyncConnection) -> int:
    """Rebuild whatever an earlier `defer_constraints` dropped; returns how many. Runs in the
    caller's transaction, so either all come back or none does."""
    present = await connection.scalar(text(f"SELECT to_regclass('{DEFERRED_TABLE}') IS NOT NULL"))
    if not present:
        return 0
    statements = list(
        await connection.scalars(
            text(f"SELECT restore FROM {DEFERRED_TABLE} ORDER BY position")  # noqa: S608
        )
    )
    if statements:
        # Index builds sort in memory; the default 64 MB spills tens of millions of keys to disk.
        await connection.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    for statement in statements:
        await connection.execute(text(statement))
    await connection.execute(text(f"DROP TABLE {DEFERRED_TABLE}"))
    return len(statements)


async def run(
    engine: AsyncEngine,
    *,
    jobs: Sequence[tuple[Any, int]],
    write_chunk: WriteChunk,
    workers: int,
    written: Callable[[tuple[int, ...]], None],
    undo: Sequence[tuple[str, dict[str, Any]]],
    worker_setup: Callable[..., None],
    worker_setup_args: tuple[Any, ...],
) -> None:
    """Write every (plan, chunk) job with `write_chunk` in `workers` processes, then rebuild
    what `defer_constraints` dropped. On any failure: `undo`, rebuild, re-raise."""
    try:

        async def queued() -> AsyncIterator[tuple[Any, int]]:
            for job in jobs:
                yield job

        async with in_workers(
            engine,
            write_chunk,
            workers=workers,
            worker_setup=worker_setup,
            worker_setup_args=worker_setup_args,
        ) as pool:
            async for counts in pool.map(queued()):
                written(counts)
        async with engine.begin() as connection:
            await restore_deferred(connection)
    except BaseException:
        async with engine.begin() as connection:
            for statement, parameters in undo:
                await connection.execute(text(statement), parameters)
            await restore_deferred(connection)
        raise


class Workers:
    """Worker processes that each take a (plan, chunk) job, run `write_chunk` on a connection
    of their own and answer what it returns (`map`)."""

    def __init__(
        self,
        pool: ProcessPoolExecutor,
        url: str | None,
        write_chunk: WriteChunk,
        workers: int,
        server_settings: dict[str, str],
    ) -> None:
        self._pool = pool
        self._url = url
        self._write_chunk = write_chunk
        self._settings = server_settings
        self.ahead = 2 * workers

    async def map(self, jobs: AsyncIterator[tuple[Any, Any]]) -> AsyncIterator[Any]:
        """The answers of `jobs`, in the jobs' order. At most `ahead` jobs are queued at once:
        a job may carry data (a slice of a file), and whatever the input's size, no more than
        that many are held in memory."""
        loop = asyncio.get_running_loop()
        queued: deque[asyncio.Future[Any]] = deque()
        try:
            async for plan, chunk in jobs:
                queued.append(
                    loop.run_in_executor(
                        self._pool,
                        _write_in_worker,
                        self._url,
                        self._settings,
                        self._write_chunk,
                        plan,
                        chunk,
                    )
                )
                while len(queued) >= self.ahead or (queued and queued[0].done()):
                    yield await queued.popleft()
            while queued:
                yield await queued.popleft()
        finally:
            for future in queued:
                future.cancel()


@asynccontextmanager
async def in_workers(
    engine: AsyncEngine | None,
    write_chunk: WriteChunk,
    *,
    workers: int,
    worker_setup: Callable[..., None],
    worker_setup_args: tuple[Any, ...],
    server_settings: dict[str, str] | None = None,
) -> AsyncIterator[Workers]:
    """`workers` spawned processes (nothing of this process's event loop or connections is
    inherited), each set up with `worker_setup(*worker_setup_args)`; with no `engine`, the
    jobs get no connection (None). On leaving, the queued jobs are dropped and the running
    ones finish first, so whatever runs next sees every row that was committed."""
    url = (
        None
        if engine is None
        else engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker_setup,
        initargs=worker_setup_args,
    )
    try:
        yield Workers(pool, url, write_chunk, workers, server_settings or {})
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# Per worker process: one event loop and one connection for every chunk it writes (a chunk
# may be a fraction of a second of work; connecting anew for each would cost a good part of it).
_worker_loop: asyncio.AbstractEventLoop | None = None
_worker_connections: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}


def _write_in_worker(
    url: str | None, settings: dict[str, str], write_chunk: WriteChunk, plan: Any, chunk: Any
) -> Any:
    global _worker_loop
    if _worker_loop is None:
        _worker_loop = asyncio.new_event_loop()

    async def write() -> Any:
        if url is None:
            return await write_chunk(None, plan, chunk)
        key = (url, tuple(sorted(settings.items())))
        connection = _worker_connections.get(key)
        if connection is None or connection.is_closed():
            import asyncpg  # the PostgreSQL extra; only this path needs the driver itself

            connection = await asyncpg.connect(
                url, server_settings={"application_name": APPLICATION_NAME} | settings
            )
            _worker_connections[key] = connection
        try:
            return await write_chunk(connection, plan, chunk)
        except BaseException:
            # Whatever state it is in, the next chunk gets a connection of its own.
            _worker_connections.pop(key, None)
            connection.terminate()
            raise

    return _worker_loop.run_until_complete(write())
