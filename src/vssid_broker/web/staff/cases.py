"""The review queue and the case, in the admin API: reading (reviewers, approvers, admins),
deciding, confirming under four eyes, assigning."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.admin import audited_reads
from vssid_broker.admin import service as staff
from vssid_broker.admin.schemas import (
    Approve,
    Assign,
    CaseDetail,
    CasePage,
    CaseSummary,
    Confirm,
    Reject,
    RevealedCitizenId,
)
from vssid_broker.linking import consent, decisions, review
from vssid_broker.linking.models import ReviewCase, ReviewReason, ReviewStatus
from vssid_broker.web.deps import Ctx, RequestId, Staff
from vssid_broker.web.params import AgeHours, Offset, RowId
from vssid_broker.web.staff.common import (
    CASE_ERRORS,
    CASES,
    api_router,
    decider,
    joined,
    reader,
)

reading_cases = api_router(*staff.READS_CASES)
"""The queue and the case: reviewers, approvers, admins."""
deciding = api_router(*staff.DECIDES)
confirming = api_router(*staff.CONFIRMS)


@reading_cases.get("/cases", tags=CASES, response_model=CasePage)
async def list_cases(
    ctx: Ctx,
    status: ReviewStatus | None = None,
    reason: ReviewReason | None = None,
    min_age_hours: AgeHours = None,
    max_age_hours: AgeHours = None,
    assigned_to: Annotated[
        str | None, Query(max_length=64, description="a staff username; empty: unassigned")
    ] = None,
    sort: review.CaseSort = "created_at",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> CasePage:
    """The review queue, oldest first by default, with counts per status; citizen IDs masked."""
    async with ctx.db() as session:
        rows, total = await review.list_cases(
            session,
            now=ctx.clock(),
            status=status,
            reason=reason,
            min_age_hours=min_age_hours,
            max_age_hours=max_age_hours,
            assigned_to=assigned_to,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        counts = await review.count_by_status(session)
    return CasePage(
        items=[CaseSummary.of(c) for c in rows],
        total=total,
        limit=limit,
        offset=offset,
        counts=counts,
        target_hours=ctx.settings.review_target_hours,
    )


@reading_cases.get("/cases/{case_id}", tags=CASES, response_model=CaseDetail, responses=CASE_ERRORS)
async def get_case(case_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId) -> CaseDetail:
    """One case: VNeID's verified claims against each candidate account, and why it is here.
    Reading a person's evidence is audited (who, which case, which accounts)."""
    async with ctx.db.begin() as session:
        case, evidence = await audited_reads.case_evidence(
            session, case_id, reader(user, ctx, request_id)
        )
        return CaseDetail.detail(case, evidence)


@reading_cases.post(
    "/cases/{case_id}/citizen-id",
    tags=CASES,
    response_model=RevealedCitizenId,
    responses=CASE_ERRORS,
)
async def reveal_case_citizen_id(
    case_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId
) -> RevealedCitizenId:
    """The case's full citizen ID, to compare with the person's card; recorded in the trail."""
    async with ctx.db.begin() as session:
        shown = await audited_reads.case_citizen_id(session, case_id, reader(user, ctx, request_id))
    return RevealedCitizenId(citizen_id=shown)


async def _decided(session: AsyncSession, case: ReviewCase) -> CaseDetail:
    return CaseDetail.detail(case, await review.evidence(session, case))


@deciding.post(
    "/cases/{case_id}/approve", tags=CASES, response_model=CaseDetail, responses=CASE_ERRORS
)
async def approve_case(
    case_id: RowId, body: Approve, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Approve a candidate. With four eyes (`VSSID_REVIEW_FOUR_EYES`, the default) the case
    becomes `proposed` and another staff member confirms it; otherwise the link is made."""
    async with ctx.db.begin() as session:
        case = await decisions.approve(
            session,
            case_id,
            version=body.version,
            account_id=body.account_id,
            decider=decider(user),
            reason=body.reason,
            now=ctx.clock(),
            request_id=request_id,
            consent_terms=consent.Terms.of_review_case(ctx.settings),
            four_eyes=ctx.settings.review_four_eyes,
        )
        return await _decided(session, case)


@deciding.post(
    "/cases/{case_id}/reject", tags=CASES, response_model=CaseDetail, responses=CASE_ERRORS
)
async def reject_case(
    case_id: RowId, body: Reject, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Refuse the link; the person is told at their next login to contact the agency."""
    async with ctx.db.begin() as session:
        case = await decisions.reject(
            session, case_id, version=body.version, decider=decider(user), reason=body.reason,
            now=ctx.clock(), request_id=request_id,
        )  # fmt: skip
        return await _decided(session, case)


@deciding.post(
    "/cases/{case_id}/close", tags=CASES, response_model=CaseDetail, responses=CASE_ERRORS
)
async def close_case(
    case_id: RowId, body: Reject, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Close a duplicate or superseded case without deciding about the person."""
    async with ctx.db.begin() as session:
        case = await decisions.reject(
            session, case_id, version=body.version, decider=decider(user), reason=body.reason,
            now=ctx.clock(), request_id=request_id, status=ReviewStatus.CLOSED,
        )  # fmt: skip
        return await _decided(session, case)


@confirming.post(
    "/cases/{case_id}/confirm", tags=CASES, response_model=CaseDetail, responses=CASE_ERRORS
)
async def confirm_case(
    case_id: RowId, body: Confirm, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Four eyes: confirm another reviewer's approval; the link is made now."""
    async with ctx.db.begin() as session:
        case = await decisions.confirm(
            session, case_id, version=body.version, confirmer=decider(user),
            reason=body.reason, now=ctx.clock(), request_id=request_id,
            consent_terms=consent.Terms.of_review_case(ctx.settings),
        )  # fmt: skip
        return await _decided(session, case)


@confirming.post(
    "/cases/{case_id}/return", tags=CASES, response_model=CaseDetail, responses=CASE_ERRORS
)
async def return_case(
    case_id: RowId, body: Reject, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Four eyes: do not confirm; the case goes back to the queue with your reason."""
    async with ctx.db.begin() as session:
        case = await decisions.return_to_queue(
            session, case_id, version=body.version, confirmer=decider(user),
            reason=body.reason, now=ctx.clock(), request_id=request_id,
        )  # fmt: skip
        return await _decided(session, case)


@reading_cases.post(
    "/cases/{case_id}/assign", tags=CASES, response_model=CaseSummary, responses=CASE_ERRORS
)
async def assign_case(
    case_id: RowId, body: Assign, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseSummary:
    """Claim a case (your own username), release it (null), or, as an admin, give it to
    someone. A case claimed by another is theirs to decide."""
    async with ctx.db.begin() as session:
        case = await decisions.assign(
            session, case_id, to=body.username, actor=decider(user),
            may_reassign=staff.can(user, staff.MANAGES_STAFF), now=ctx.clock(),
            request_id=request_id,
        )  # fmt: skip
        return CaseSummary.of(case)


router = joined(reading_cases, deciding, confirming)
