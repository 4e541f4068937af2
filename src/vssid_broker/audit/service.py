"""Writing the audit trail. Details must already be masked: no citizen ID, token or secret.

Events recorded in a transaction are inserted when it commits, not when the next query
flushes the session: appending to the chain takes the chain's lock (`audit.chain`), which is
then held only for the commit itself instead of for the rest of the transaction (a login's
token signing, its other statements), which queued every other login behind it. An event
recorded in a transaction that rolls back is never written, as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vssid_broker.audit import chain as _chain  # noqa: F401 - the chain's insert hook
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent, AuditEventPerson
from vssid_broker.identifiers import mask_identifiers_in
from vssid_broker.sealing import blind_index


def record(
    session: AsyncSession,
    *,
    event_type: AuditEventType,
    outcome: str,
    now: datetime,
    actor: str = "system",
    account_id: int | None = None,
    request_id: str | None = None,
    about_citizen_id: str | None = None,
    **details: Any,
) -> None:
    """`about_citizen_id`: the person the event is about when no account of theirs is named
    (a refused login, a review case), kept only as its blind index (`AuditEventPerson`), so
    their export finds the event."""
    entry = AuditEvent(
        occurred_at=now,
        event_type=event_type,
        outcome=outcome,
        account_id=account_id,
        actor=actor,
        request_id=request_id,
        details={key: _guarded(value) for key, value in details.items()},
    )
    pending = session.info.setdefault(_PENDING, [])
    pending.append(entry)
    if about_citizen_id is not None:
        pending.append(
            AuditEventPerson(event=entry, citizen_id_index=blind_index(about_citizen_id))
        )


_PENDING = "vssid_broker.audit_pending"


@event.listens_for(Session, "before_commit")
def _add_pending(session: Session) -> None:
    # The commit flushes what is added here, after everything else the transaction wrote.
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.add_all(pending)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _guarded(value: Any) -> Any:
    """Callers mask identifiers already; this catches one that slipped into a text."""
    if isinstance(value, str):
        return mask_identifiers_in(value)
    if isinstance(value, list):
        return [_guarded(item) for item in value]
    return value


async def search(
    session: AsyncSession,
    *,
    account_id: int | None = None,
    case_id: int | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """The trail, newest first, filtered by account, review case, actor and time."""
    query = select(AuditEvent)
    if account_id is not None:
        query = query.where(AuditEvent.account_id == account_id)
    if case_id is not None:
        query = query.where(AuditEvent.details["case_id"].as_integer() == case_id)
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)
