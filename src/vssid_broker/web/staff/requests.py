"""The person's requests in the admin API: the queue by kind and age, one request with its
history, claim, decide (done or refused with a reason). Every step is a compare-and-set on the
request's `version`: of two staff acting at once one wins, the other gets 409 `request_changed`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffUser
from vssid_broker.requests import processing as request_processing
from vssid_broker.requests import service
from vssid_broker.requests.models import AgencyRequestEvent, RequestKind, RequestStatus
from vssid_broker.requests.schemas import ClaimIn, DecisionIn, QueuedRequestOut
from vssid_broker.web.deps import Ctx, RequestId, Staff
from vssid_broker.web.staff.common import api_router, joined, problem

REQUESTS: list[Any] = ["admin: requests"]
REQUEST_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("`staff_role_required` or `own_request`"),
    404: problem("no such request in the queue (`request_not_found`)"),
    409: problem("`request_changed` (changed since you read it) or `request_assigned_elsewhere`"),
    422: problem("`refusal_reason_required` or `invalid_request`"),
}

reading = api_router(*staff.READS_CASES)
processing = api_router(*staff.DECIDES)


async def _queued(ctx: Ctx, reference: str) -> QueuedRequestOut:
    async with ctx.db() as session:
        entry = await request_processing.get_for_staff(session, reference)
        return queued_out(entry, await service.history(session, entry.request.id))


def queued_out(
    entry: request_processing.QueueEntry, events: list[AgencyRequestEvent] | None = None
) -> QueuedRequestOut:
    return QueuedRequestOut.queued(entry.request, entry.bhxh_code, entry.full_name, events)


def actor(user: StaffUser) -> request_processing.StaffActor:
    return request_processing.StaffActor(user.username, user.account_id)


@reading.get("/requests", tags=REQUESTS, response_model=list[QueuedRequestOut])
async def request_queue(
    ctx: Ctx,
    kind: RequestKind | None = None,
    status: Annotated[
        RequestStatus | None, Query(description="default: submitted and in_progress")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[QueuedRequestOut]:
    """Requests waiting for the agency, oldest first."""
    async with ctx.db() as session:
        entries = await request_processing.queue(session, kind=kind, status=status, limit=limit)
    return [queued_out(entry) for entry in entries]


@reading.get(
    "/requests/{reference}",
    tags=REQUESTS,
    response_model=QueuedRequestOut,
    responses=REQUEST_ERRORS,
)
async def request_detail(reference: str, ctx: Ctx) -> QueuedRequestOut:
    return await _queued(ctx, reference)


@processing.post(
    "/requests/{reference}/claim",
    tags=REQUESTS,
    response_model=QueuedRequestOut,
    responses=REQUEST_ERRORS,
)
async def claim_request(
    reference: str, body: ClaimIn, user: Staff, ctx: Ctx, request_id: RequestId
) -> QueuedRequestOut:
    """Take a submitted request (it becomes `in_progress`, yours to decide)."""
    async with ctx.db.begin() as session:
        await request_processing.claim(
            session, reference, version=body.version, staff=actor(user), now=ctx.clock(),
            request_id=request_id,
        )  # fmt: skip
    return await _queued(ctx, reference)


@processing.post(
    "/requests/{reference}/decide",
    tags=REQUESTS,
    response_model=QueuedRequestOut,
    responses=REQUEST_ERRORS,
)
async def decide_request(
    reference: str, body: DecisionIn, user: Staff, ctx: Ctx, request_id: RequestId
) -> QueuedRequestOut:
    """Done (what was asked is applied to the record) or refused (with a reason the person
    reads)."""
    async with ctx.db.begin() as session:
        await request_processing.decide(
            session, reference, version=body.version, outcome=body.outcome, reason=body.reason,
            staff=actor(user), now=ctx.clock(), request_id=request_id,
        )  # fmt: skip
    return await _queued(ctx, reference)


router = joined(reading, processing)
