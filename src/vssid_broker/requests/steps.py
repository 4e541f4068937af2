"""How a request moves, for the person's side (`service`) and the staff's (`processing`) alike:
one compare-and-set on its status and version, a row of its history and an audit event, all in
the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors.requests import RequestKindUnknown, RequestVersionConflict
from vssid_broker.requests.models import (
    AgencyRequest,
    AgencyRequestEvent,
    RequestKind,
    RequestStatus,
)


def known_kind(kind: str) -> RequestKind:
    try:
        return RequestKind(kind)
    except ValueError as error:
        raise RequestKindUnknown(f"unknown request kind {kind[:40]!r}") from error


async def move(
    session: AsyncSession,
    row: AgencyRequest,
    now: datetime,
    actor: str,
    request_id: str | None,
    event_type: AuditEventType,
    *,
    expected_status: RequestStatus,
    status: RequestStatus,
    version: int | None = None,
    note: str | None = None,
    unassigned: bool = False,
    **values: Any,
) -> None:
    """One compare-and-set: the row moves only from the status (and version) the caller saw."""
    seen_version = row.version if version is None else version
    if unassigned:
        values["assigned_to"] = None
    moved = await session.scalar(
        update(AgencyRequest)
        .where(
            AgencyRequest.id == row.id,
            AgencyRequest.version == seen_version,
            AgencyRequest.status == expected_status,
        )
        .values(status=status, version=AgencyRequest.version + 1, **values)
        .returning(AgencyRequest.version)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        raise RequestVersionConflict(
            f"request {row.reference} is not {expected_status} at version {seen_version}"
        )
    await session.refresh(row)
    add_history(session, row, now, actor, note)
    record_audit(session, event_type, row, now, request_id, actor)


def add_history(
    session: AsyncSession, row: AgencyRequest, now: datetime, actor: str, note: str | None = None
) -> None:
    session.add(
        AgencyRequestEvent(request_id=row.id, at=now, status=row.status, actor=actor, note=note)
    )


def record_audit(
    session: AsyncSession,
    event_type: AuditEventType,
    row: AgencyRequest,
    now: datetime,
    request_id: str | None,
    actor: str,
) -> None:
    audit.record(
        session,
        event_type=event_type,
        outcome=row.status,
        now=now,
        actor=actor,
        account_id=row.account_id,
        request_id=request_id,
        reference=row.reference,
        kind=row.kind,
    )
