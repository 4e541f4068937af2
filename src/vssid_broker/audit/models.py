"""Tables of the audit domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vssid_broker.db import Base, BigId, UTCDateTime


class AuditEvent(Base):
    """One thing that happened. Rows are only ever inserted (the database refuses UPDATE and
    DELETE, `audit.append_only`); details hold masked identifiers. Each row carries the hash
    of the one before it (`audit.chain`), so an edited, deleted or reordered row is found by
    `vssid-broker audit verify`."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_account_at", "account_id", "occurred_at"),
        Index("ix_audit_events_type_at", "event_type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_type: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(60))
    account_id: Mapped[int | None] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    """`entry_hash` of the entry before this one (or of the purge checkpoint it follows)."""
    entry_hash: Mapped[str] = mapped_column(String(64))
    """HMAC-SHA256 over `prev_hash` and this entry's content (`audit.chain.entry_hash`)."""
    chain_key_id: Mapped[str | None] = mapped_column(String(8))
    """Which chain key made `entry_hash`; None for entries from before the chain was keyed
    (a plain SHA-256)."""


class AuditCheckpoint(Base):
    """Where a purge cut the front of the chain: the last removed entry and its hash, so the
    first entry kept still verifies. The database lets a DELETE remove only entries at or
    before the newest checkpoint."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_id: Mapped[int] = mapped_column(BigId)
    last_entry_hash: Mapped[str] = mapped_column(String(64))
    events_removed: Mapped[int] = mapped_column(BigId)


class AuditEventPerson(Base):
    """Whom an event names no account of is about, by the blind index of their citizen ID: a
    refused login, a review case opened or decided, a staff member shown a case's citizen ID.
    What finds those events for the person's export (`personal_data`).

    Kept beside the chain, not in it: an index for finding, like `citizen_id_index` elsewhere,
    rewritten under a new blind-index key by `keys reindex-citizen-ids` (the entries themselves
    can never change), and removed with its event by the purge."""

    __tablename__ = "audit_event_people"

    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("audit_events.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False,
    )  # fmt: skip
    citizen_id_index: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[AuditEvent] = relationship()
