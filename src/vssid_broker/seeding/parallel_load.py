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
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

DEFERRED_TABLE = "bulk_load_deferred_ddl"
APPLICATION_NAME = "vssid-bulk-load"

WriteChunk = Callable[[Any, Any, int], Awaitable[tuple[int, ...]]]
"""(asyncpg connection, plan, chunk number) → counts of what the chunk wrote."""

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
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    loop = asyncio.get_running_loop()
    try:
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_setup,
            initargs=worker_setup_args,
        )
        try:
            pending = [
                loop.run_in_executor(pool, _write_in_worker, url, write_chunk, plan, chunk)
                for plan, chunk in jobs
            ]
            for finished in asyncio.as_completed(pending):
                written(await finished)
        finally:
            # On failure the queued chunks are dropped and the running ones finish first, so
            # `undo` below sees every row that was committed.
            pool.shutdown(wait=True, cancel_futures=True)
        async with engine.begin() as connection:
            await restore_deferred(connection)
    except BaseException:
        async with engine.begin() as connection:
            for statement, parameters in undo:
                await connection.execute(text(statement), parameters)
            await restore_deferred(connection)
        raise


def _write_in_worker(url: str, write_chunk: WriteChunk, plan: Any, chunk: int) -> tuple[int, ...]:
    async def write() -> tuple[int, ...]:
        import asyncpg  # the PostgreSQL extra; only this path needs the driver itself

        connection = await asyncpg.connect(
            url, server_settings={"application_name": APPLICATION_NAME}
        )
        try:
            return await write_chunk(connection, plan, chunk)
        finally:
            await connection.close()

    return asyncio.run(write())
