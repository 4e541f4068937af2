"""The audit trail as a hash chain: each entry carries the hash of the one before it.

Writers: every `AuditEvent` gets `prev_hash` and `entry_hash` as it is inserted (a mapper
hook, so no caller can forget). On PostgreSQL the writer first takes a transaction-scoped
advisory lock, held until its commit, and reads the tip under it in the same round trip
(`vssid_audit_chain_tip`, migration 0013), so writers from any number of processes append one
after another and the chain's order is the id order; on SQLite `BEGIN IMMEDIATE` already
serialises writers. The lock is taken when the commit flushes the transaction's events
(`audit.service` adds them only then), so it is held for their insert and the commit.

Keyed: each link is an HMAC-SHA256 under a key derived (HKDF) from the key-encryption key, which
the database never holds, so a role that may only INSERT (the broker's own, or anyone who took
it) cannot write an entry that verifies. Each entry names the key it was made with
(`chain_key_id`, migration 0014), so entries made before a key-encryption-key rotation still
verify while the previous key is configured. Entries written before the chain was keyed carry no
key id and a plain SHA-256; the first keyed entry is the switch-over point, and no unkeyed entry
may follow it.

Readers: `verify` walks the chain in id order and names the first entry that does not fit:
an edited entry (its hash no longer matches its content), a deleted one (the next entry's
`prev_hash` names a hash that is not there) or a reordered one (same). A purge removes a
prefix only and leaves a checkpoint with the last removed hash (`AuditCheckpoint`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import event, exc, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from vssid_broker.audit.models import AuditCheckpoint, AuditEvent
from vssid_broker.config import Settings
from vssid_broker.sealing import decode_32_byte_key, load_32_byte_key

GENESIS = "0" * 64
"""`prev_hash` of the first entry ever written."""
CHAIN_LOCK = 0x7653_5349_4441_5544
"""PostgreSQL advisory lock key of the chain's tip (any constant no other code uses)."""
_TIP = "vssid_broker.audit_chain_tip"
_KEY_INFO = b"vssid-broker audit chain v1"


class ChainKeyError(RuntimeError):
    """The audit chain's key is not loaded in this process."""


@dataclass(frozen=True)
class ChainKeys:
    """The chain's HMAC keys by key id, the current one first (it makes new links)."""

    current_kid: str
    keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def from_keks(cls, current_kek: bytes, previous_keks: Iterable[bytes] = ()) -> ChainKeys:
        keys: dict[str, bytes] = {}
        for kek in [current_kek, *previous_keks]:
            key = HKDF(hashes.SHA256(), 32, salt=None, info=_KEY_INFO).derive(kek)
            keys.setdefault(hashlib.sha256(key).hexdigest()[:8], key)
        return cls(next(iter(keys)), keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainKeys:
        current = load_32_byte_key(
            settings.key_encryption_key,
            settings.key_encryption_key_file,
            "VSSID_KEY_ENCRYPTION_KEY",
        )
        previous = [
            decode_32_byte_key(value.get_secret_value(), "VSSID_CITIZEN_ID_PREVIOUS_KEKS")
            for value in settings.citizen_id_previous_keks
        ]
        return cls.from_keks(current, previous)


_installed: ChainKeys | None = None


def install(keys: ChainKeys) -> None:
    """Make `keys` the ones this process links and verifies the chain with (at start-up)."""
    global _installed
    _installed = keys


def installed() -> ChainKeys:
    if _installed is None:
        raise ChainKeyError("the audit chain key is not loaded in this process")
    return _installed


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
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 under `key` of the entry's content in a canonical JSON form (sorted keys,
    UTC time with microseconds: what both databases store and give back unchanged); a plain
    SHA-256 for the entries written before the chain was keyed (`key` None: migration 0008
    links the entries of its time so)."""
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
    canonical = json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode()
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.digest(key, canonical, "sha256").hex()  # one-shot: the cheaper call


def hash_of(row: AuditEvent, prev_hash: str, key: bytes | None) -> str:
    return entry_hash(
        prev_hash,
        occurred_at=row.occurred_at,
        event_type=row.event_type,
        outcome=row.outcome,
        account_id=row.account_id,
        actor=row.actor,
        request_id=row.request_id,
        details=row.details or {},
        key=key,
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
    keys = installed()
    if row.details is None:
        row.details = {}
    row.prev_hash = _tip(connection)
    row.chain_key_id = keys.current_kid
    row.entry_hash = hash_of(row, row.prev_hash, keys.keys[keys.current_kid])
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
    keys = installed()
    keyed = False  # past the switch-over point: every entry must be keyed
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
        key = None
        if row.chain_key_id is not None:
            keyed = True
            key = keys.keys.get(row.chain_key_id)
            if key is None:
                return Verified(
                    count,
                    row.id,
                    f"linked with chain key {row.chain_key_id}, which is not configured (the "
                    "key-encryption key it was made under belongs in "
                    "VSSID_CITIZEN_ID_PREVIOUS_KEKS)",
                )
        elif keyed:
            return Verified(count, row.id, "an unkeyed entry after the chain became keyed (forged)")
        if hash_of(row, row.prev_hash, key) != row.entry_hash:
            return Verified(
                count,
                row.id,
                "content does not match its hash (edited, or written without the chain key)",
            )
        expected = row.entry_hash
        count += 1
    return Verified(count)
