"""The audit trail is a hash chain the database will not let anyone edit, and `audit verify`
finds the first entry that an owner of the database edited, deleted or moved anyway."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Stack
from vssid_broker.audit import append_only
from vssid_broker.audit import service as audit
from vssid_broker.audit.chain import GENESIS, verify
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditCheckpoint, AuditEvent
from vssid_broker.housekeeping import purge

ANY_EVENT = AuditEventType.DATA_PURGED
"""The chain treats every kind of event alike: these tests write one kind."""


async def write_events(stack: Stack, count: int, *, account_id: int | None = None) -> list[int]:
    async with stack.db.begin() as session:
        for number in range(count):
            audit.record(
                session,
                event_type=ANY_EVENT,
                outcome="ok",
                now=stack.clock(),
                account_id=account_id,
                number=number,
            )
    async with stack.db() as session:
        return list(await session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))


async def verified(stack: Stack) -> tuple[int, int | None]:
    async with stack.db() as session:
        result = await verify(session)
    return result.entries, result.broken_at


@pytest.fixture
async def as_database_owner(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Someone who can lift the triggers (the owner of the database), for the tamper tests."""
    async with engine.begin() as connection:
        await connection.run_sync(append_only.remove)
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(append_only.remove)
        await connection.run_sync(append_only.install)


async def test_each_entry_chains_to_the_one_before(stack: Stack) -> None:
    ids = await write_events(stack, 3)
    async with stack.db() as session:
        rows = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.entry_hash for r in rows[:-1]]
    assert await verified(stack) == (len(ids), None)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET outcome = 'x'", "DELETE FROM audit_events"]
)
async def test_the_database_refuses_update_and_delete(stack: Stack, statement: str) -> None:
    await write_events(stack, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        async with stack.db.begin() as session:
            await session.execute(text(statement))
    assert await verified(stack) == (2, None)


async def test_verify_names_an_edited_entry(stack: Stack, as_database_owner: AsyncEngine) -> None:
    ids = await write_events(stack, 4)
    async with as_database_owner.begin() as connection:
        await connection.execute(
            text("UPDATE audit_events SET outcome = 'denied' WHERE id = :id"), {"id": ids[2]}
        )
    assert await verified(stack) == (2, ids[2])


async def test_verify_names_the_entry_after_a_deleted_one(
    stack: Stack, as_database_owner: AsyncEngine
) -> None:
    ids = await write_events(stack, 4)
    async with as_database_owner.begin() as connection:
        await connection.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[1]})
    assert await verified(stack) == (1, ids[2])


async def test_verify_names_a_reordered_entry(stack: Stack, as_database_owner: AsyncEngine) -> None:
    """Two entries swap places (their ids): the content moves with its hashes, the order does
    not match any more."""
    ids = await write_events(stack, 4)
    swap = {"a": ids[1], "b": ids[2], "spare": ids[-1] + 1000}
    async with as_database_owner.begin() as connection:
        await connection.execute(text("UPDATE audit_events SET id = :spare WHERE id = :a"), swap)
        await connection.execute(text("UPDATE audit_events SET id = :a WHERE id = :b"), swap)
        await connection.execute(text("UPDATE audit_events SET id = :b WHERE id = :spare"), swap)
    assert await verified(stack) == (1, ids[1])


async def test_a_purge_keeps_the_chain_verifiable_and_is_itself_audited(stack: Stack) -> None:
    await write_events(stack, 3)
    stack.clock.advance(stack.settings.retain_audit_events_days * 86400 + 60)
    kept = await write_events(stack, 2)
    async with stack.db.begin() as session:
        purged = await purge(session, stack.clock(), stack.settings)
    assert purged.audit_events == 3
    async with stack.db() as session:
        remaining = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        checkpoint = await session.scalar(select(AuditCheckpoint))
    assert [r.id for r in remaining[:2]] == kept[-2:]
    assert remaining[-1].event_type == "data.purged"
    assert remaining[-1].details["audit_events"] == 3
    assert checkpoint is not None and checkpoint.events_removed == 3
    assert await verified(stack) == (3, None)
    # Later entries, and a second purge, chain on.
    stack.clock.advance(stack.settings.retain_audit_events_days * 86400 + 60)
    await write_events(stack, 1)
    async with stack.db.begin() as session:
        await purge(session, stack.clock(), stack.settings)
    assert await verified(stack) == (2, None)


async def test_the_trigger_lets_a_delete_through_only_behind_a_checkpoint(stack: Stack) -> None:
    ids = await write_events(stack, 3)
    async with stack.db.begin() as session:
        await purge(session, stack.clock() + timedelta(days=1), stack.settings)  # nothing old
    with pytest.raises(DBAPIError, match="append-only"):
        async with stack.db.begin() as session:
            await session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[0]})


WRITER = """
import asyncio, sys
from vssid_broker.audit import chain, service as audit
from vssid_broker.config import Settings
from vssid_broker.db import create_engine, session_factory, utcnow

async def main(url: str, name: str, count: int) -> None:
    chain.install(chain.ChainKeys.from_settings(Settings()))  # the KEK from the environment
    engine = create_engine(url)
    sessions = session_factory(engine)
    for number in range(count):
        async with sessions.begin() as session:
            audit.record(session, event_type="test.concurrent", outcome=name, now=utcnow(),
                         number=number)
    await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_writers_in_several_processes_keep_one_chain(stack: Stack) -> None:
    per_process, processes = 25, 4
    assert stack.settings.key_encryption_key is not None
    kek = stack.settings.key_encryption_key.get_secret_value()
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            stack.settings.database_url,
            f"p{n}",
            str(per_process),
            env=os.environ | {"VSSID_KEY_ENCRYPTION_KEY": kek},
        )
        for n in range(processes)
    ]
    assert [await writer.wait() for writer in writers] == [0] * processes
    async with stack.db() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEvent))
    assert count == per_process * processes
    assert await verified(stack) == (per_process * processes, None)


async def test_a_transaction_holds_the_chain_only_while_it_commits(
    stack: Stack, engine: AsyncEngine
) -> None:
    """A login records its audit event early and goes on working (more statements, signing its
    tokens); other logins, in this process or another, must not queue behind it for all that
    time. The chain's lock is taken only by the commit, and the event is written then."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the chain lock is PostgreSQL's advisory lock (SQLite serialises writers)")
    from vssid_broker.audit.chain import CHAIN_LOCK

    before = await write_events(stack, 0)
    async with stack.db.begin() as session:
        audit.record(session, event_type=ANY_EVENT, outcome="ok", now=stack.clock())
        await session.execute(select(func.count()).select_from(AuditEvent))  # would autoflush
        async with engine.connect() as other:
            # Another writer gets the chain at once while this transaction is still open.
            assert await other.scalar(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK}
            )
            await other.rollback()
    after = await write_events(stack, 0)
    assert len(after) == len(before) + 1
    assert await verified(stack) == (len(after), None)


async def test_an_event_of_a_transaction_rolled_back_is_never_written(stack: Stack) -> None:
    before = await write_events(stack, 0)
    with pytest.raises(RuntimeError, match="changed its mind"):
        async with stack.db.begin() as session:
            audit.record(session, event_type=ANY_EVENT, outcome="ok", now=stack.clock())
            raise RuntimeError("changed its mind")
    async with stack.db.begin() as session:  # the same pooled connection, a new transaction
        audit.record(session, event_type=ANY_EVENT, outcome="second", now=stack.clock())
    after = await write_events(stack, 0)
    assert len(after) == len(before) + 1
