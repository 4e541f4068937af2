"""The staff's side of a request: the queue they work down, claiming one, deciding it. Every
step is an optimistic compare-and-set on `version` (`steps.move`): of two staff acting at once,
one wins, the other gets 409. A member of staff never processes a request about their own
account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account, HealthInsuranceCard
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors.requests import (
    OwnRequest,
    RefusalReasonRequired,
    RequestAssignedElsewhere,
    RequestNotFound,
)
from vssid_broker.requests import steps
from vssid_broker.requests.models import AgencyRequest, RequestKind, RequestStatus


@dataclass(frozen=True)
class StaffActor:
    username: str
    account_id: int | None = None
    """Their own VssID account: they never process a request about it."""

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


@dataclass(frozen=True)
class QueueEntry:
    request: AgencyRequest
    bhxh_code: str
    full_name: str


async def queue(
    session: AsyncSession,
    *,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[QueueEntry]:
    """Requests waiting for the agency, oldest first (the age is what staff work down)."""
    statuses = [status] if status else [RequestStatus.SUBMITTED, RequestStatus.IN_PROGRESS]
    statement = (
        select(AgencyRequest, Account.bhxh_code, Account.full_name)
        .join(Account, Account.id == AgencyRequest.account_id)
        .where(AgencyRequest.status.in_(statuses))
        .order_by(AgencyRequest.submitted_at, AgencyRequest.id)
        .limit(limit)
    )
    if kind:
        statement = statement.where(AgencyRequest.kind == steps.known_kind(kind))
    rows = (await session.execute(statement)).all()
    return [QueueEntry(row[0], row[1], row[2]) for row in rows]


async def queue_counts(session: AsyncSession) -> dict[str, int]:
    """Open requests (submitted or in progress) by kind."""
    rows = await session.execute(
        select(AgencyRequest.kind, func.count())
        .where(AgencyRequest.status.in_([RequestStatus.SUBMITTED, RequestStatus.IN_PROGRESS]))
        .group_by(AgencyRequest.kind)
    )
    return {kind: int(count) for kind, count in rows.all()}


async def get_for_staff(session: AsyncSession, reference: str) -> QueueEntry:
    row = (
        await session.execute(
            select(AgencyRequest, Account.bhxh_code, Account.full_name)
            .join(Account, Account.id == AgencyRequest.account_id)
            .where(AgencyRequest.reference == reference)
        )
    ).first()
    if row is None or row[0].status == RequestStatus.AWAITING_CODE:
        raise RequestNotFound(f"no request {reference[:30]!r} in the queue")
    return QueueEntry(row[0], row[1], row[2])


async def claim(
    session: AsyncSession,
    reference: str,
    *,
    version: int,
    staff: StaffActor,
    now: datetime,
    request_id: str | None,
) -> AgencyRequest:
    row = await _for_processing(session, reference, staff)
    await steps.move(
        session,
        row,
        now,
        staff.actor,
        request_id,
        AuditEventType.REQUEST_CLAIMED,
        expected_status=RequestStatus.SUBMITTED,
        status=RequestStatus.IN_PROGRESS,
        version=version,
        assigned_to=staff.username,
    )
    return row


async def decide(
    session: AsyncSession,
    reference: str,
    *,
    version: int,
    outcome: str,
    reason: str | None,
    staff: StaffActor,
    now: datetime,
    request_id: str | None,
) -> AgencyRequest:
    """Done or refused (a refusal says why, to the person). Done applies what was asked to the
    record in the same transaction: the new phone number, the new primary-care facility."""
    row = await _for_processing(session, reference, staff)
    reason = (reason or "").strip() or None
    if outcome == RequestStatus.REFUSED and reason is None:
        raise RefusalReasonRequired("a refusal needs a reason the person can read")
    status, event = (
        (RequestStatus.DONE, AuditEventType.REQUEST_DONE)
        if outcome == RequestStatus.DONE
        else (RequestStatus.REFUSED, AuditEventType.REQUEST_REFUSED)
    )
    await steps.move(
        session,
        row,
        now,
        staff.actor,
        request_id,
        event,
        expected_status=RequestStatus.IN_PROGRESS,
        status=status,
        version=version,
        closed_at=now,
        refusal_reason=reason if status is RequestStatus.REFUSED else None,
        note=reason,
        assigned_to=staff.username,
    )
    if status is RequestStatus.DONE:
        await _apply(session, row)
    return row


async def _for_processing(
    session: AsyncSession, reference: str, staff: StaffActor
) -> AgencyRequest:
    row = (await get_for_staff(session, reference)).request
    if staff.account_id is not None and staff.account_id == row.account_id:
        raise OwnRequest(f"request {reference} is about the staff member's own account")
    if row.assigned_to not in (None, staff.username):
        raise RequestAssignedElsewhere(f"request {reference} is claimed by another")
    return row


async def _apply(session: AsyncSession, row: AgencyRequest) -> None:
    if row.kind == RequestKind.PHONE_CHANGE:
        await session.execute(
            update(Account)
            .where(Account.id == row.account_id)
            .values(phone=row.details["new_phone"])
        )
    elif row.kind == RequestKind.PRIMARY_CARE_CHANGE:
        await session.execute(
            update(HealthInsuranceCard)
            .where(HealthInsuranceCard.account_id == row.account_id)
            .values(
                facility_code=row.details["facility_code"],
                primary_care_facility=row.details["facility_name"],
            )
        )
    # A card re-issue is printed and posted by the agency: the record does not change here.
