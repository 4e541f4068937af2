"""The audit trail as a hash chain: each entry carries the hash of the one before it.

Writers: every `AuditEvent` gets `prev_hash` and `entry_hash` as it is inserted (a mapper
hook, so no caller can forget). On PostgreSQL the writer first takes a transaction-scoped
advisory lock, held until its commit, and reads the tip under it in the same round trip
(`vssid_audit_chain_tip`, migration 0013), so writers from any number of processes append one
after another and the chain's order is the id order; on SQLite `BEGIN IMMEDIATE` already
serialises writers. The lock is taken when the commit flushes the transaction's events
(`audit.service` adds them only then), so it is held for their insert and the commit.

Readers: `verify` walks the chain in id order and names the first entry that does not fit:
an edited entry (its hash no longer matches its content), a deleted one (the next entry's
`prev_hash` names a hash that is not there) or a reordered one (same). A purge removes a
prefix only and leaves a checkpoint with the last removed hash (`AuditCheckpoint`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, exc, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from vssid_broker.audit.models import AuditCheckpoint, AuditEvent

GENESIS = "0" * 64
"""`prev_hash` of the first entry ever written."""
CHAIN_LOCK = 0x7653_5349_4441_5544
"""PostgreSQL advisory lock key of the chain's tip (any constant no other code uses)."""
_TIP = "vssid_broker.audit_chain_tip"


def entry_hash(
    prev_hash: str,
    *,
    occurred_at: datetime,
    event_type: str,
    outcome: str,
    account_id: int | None,
    actor: str,
    request_id: str | None,
    details: dict[str, Any],
) -> str:
    """SHA-256 of the entry's content in a canonical JSON form (sorted keys, UTC time with
    microseconds: what both databases store and give back unchanged)."""
    content = [
        prev_hash,
        occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        event_type,
        outcome,
        account_id,
        actor,
        request_id,
        details,
    ]
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_of(row: AuditEvent, prev_hash: str) -> str:
    return entry_hash(
        prev_hash,
        occurred_at=row.occurred_at,
        event_type=row.event_type,
        outcome=row.outcome,
        account_id=row.account_id,
        actor=row.actor,
        request_id=row.request_id,
        details=row.details or {},
    )


def _tip(connection: Connection) -> str:
    """The hash the next entry chains to, read once per transaction under the chain lock."""
    tip = connection.info.get(_TIP)
    if tip is not None:
        return str(tip)
    if connection.dialect.name == "postgresql":
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            raise RuntimeError("audit events are written in a transaction (the chain lock)")
        # The lock, then the tip under it, in one round trip (migration 0013).
        locked_tip = connection.execute(
            text("SELECT vssid_audit_chain_tip(:key)"), {"key": CHAIN_LOCK}
        ).scalar()
        return str(locked_tip) if locked_tip is not None else GENESIS
    last = connection.execute(
        select(AuditEvent.entry_hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar()
    if last is None:
        last = connection.execute(
            select(AuditCheckpoint.last_entry_hash).order_by(AuditCheckpoint.id.desc()).limit(1)
        ).scalar()
    return last or GENESIS


@event.listens_for(AuditEvent, "before_insert")
def _chain(_mapper: Mapper[AuditEvent], connection: Connection, row: AuditEvent) -> None:
    # Several events in one flush are all hooked before any is inserted: the tip is carried
    # on the connection until the transaction ends.
    if row.details is None:
        row.details = {}
    row.prev_hash = _tip(connection)
    row.entry_hash = hash_of(row, row.prev_hash)
    connection.info[_TIP] = row.entry_hash


def _forget_tip(connection: Connection, *_args: object) -> None:
    # A connection lost mid-transaction (killed, dropped) refuses even `info`; that is cleared
    # with the DBAPI connection it belonged to, so there is no tip left to forget.
    with contextlib.suppress(exc.PendingRollbackError):
        connection.info.pop(_TIP, None)


for _name in ("commit", "rollback", "rollback_savepoint"):
    event.listen(Engine, _name, _forget_tip)


@dataclass(frozen=True)
class Verified:
    entries: int
    broken_at: int | None = None
    """Id of the first entry that does not fit, or None: the chain is whole."""
    problem: str | None = None


async def _rows(session: AsyncSession, batch: int) -> AsyncIterator[AuditEvent]:
    last_id = 0
    while True:
        rows = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.id > last_id)
                .order_by(AuditEvent.id)
                .limit(batch)
            )
        )
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        last_id = rows[-1].id
        session.expunge_all()


async def verify(session: AsyncSession, *, batch: int = 5_000) -> Verified:
    """Walk the whole chain; stop at the first entry that does not fit."""
    checkpoints = list(
        await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.last_event_id))
    )
    expected: str | None = None
    count = 0
    async for row in _rows(session, batch):
        if expected is None:
            # The first entry kept follows the newest checkpoint before it, or the genesis.
            before = [c for c in checkpoints if c.last_event_id < row.id]
            expected = before[-1].last_entry_hash if before else GENESIS
        if row.prev_hash != expected:
            return Verified(
                count,
                row.id,
                "prev_hash does not match the entry before it "
                "(an entry before it was deleted, inserted or moved)",
            )
        if hash_of(row, row.prev_hash) != row.entry_hash:
            return Verified(count, row.id, "content does not match its hash (edited)")
        expected = row.entry_hash
        count += 1
    return Verified(count)
