"""Writing the audit trail. Details must already be masked: no citizen ID, token or secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.audit.models import AuditEvent


def record(
    session: AsyncSession,
    *,
    event_type: str,
    outcome: str,
    now: datetime,
    actor: str = "system",
    account_id: int | None = None,
    request_id: str | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEvent(
            occurred_at=now,
            event_type=event_type,
            outcome=outcome,
            account_id=account_id,
            actor=actor,
            request_id=request_id,
            details=details,
        )
    )
