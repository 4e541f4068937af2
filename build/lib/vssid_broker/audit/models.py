"""Tables of the audit domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.db import Base, BigId, UTCDateTime


class AuditEvent(Base):
    """One thing that happened. Rows are only ever inserted; details hold masked identifiers."""

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
