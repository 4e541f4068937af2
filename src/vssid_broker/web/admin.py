"""The admin API for staff, under /admin/api/v1: sign-in, review cases, links, audit trail.

Thin: each route calls one service function inside one transaction and shapes the answer. The
role check is a dependency of the router a route is on (`reviewing` or `administering`), so a
new route cannot forget it. Every error is a `DomainError`, answered as problem+json.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.admin.schemas import (
    Approve,
    AuditEventOut,
    CaseDetail,
    CaseSummary,
    LinkOut,
    Page,
    Reject,
    StaffSignIn,
    StaffTokenOut,
    Unlink,
    UnlinkedOut,
)
from vssid_broker.audit import service as audit
from vssid_broker.errors.staff import InvalidStaffCredentials, StaffSignInLocked
from vssid_broker.linking import review
from vssid_broker.linking.models import ReviewReason, ReviewStatus
from vssid_broker.web.deps import Ctx, RequestId, Staff, staff_with_role
from vssid_broker.web.params import AgeHours, CaseIdInAudit, Moment, Offset, RowId, RowIdFilter
from vssid_broker.web.rate_limiting import password_attempt

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or expired staff token", **PROBLEM},
    403: {"description": "the staff role does not allow this", **PROBLEM},
    422: {"description": "invalid request", **PROBLEM},
}

router = APIRouter(prefix="/admin/api/v1", responses=ERRORS)
reviewing = APIRouter(dependencies=[staff_with_role(StaffRole.REVIEWER, StaffRole.ADMIN)])
"""Review cases and the links they make: reviewers and admins."""
administering = APIRouter(dependencies=[staff_with_role(StaffRole.ADMIN)])
"""Unlinking and the audit trail: admins only."""


def decider(user: StaffUser) -> review.Decider:
    return review.Decider(user.username, user.account_id)


@router.post("/token", tags=["admin: staff"], response_model=StaffTokenOut)
async def sign_in(
    body: StaffSignIn, request: Request, ctx: Ctx, request_id: RequestId
) -> StaffTokenOut:
    """Staff sign-in with username and password; returns a short-lived bearer token."""
    async with password_attempt(request, ctx, realm="staff", identifier=body.username):
        return await _sign_in(body, ctx, request_id)


async def _sign_in(body: StaffSignIn, ctx: Ctx, request_id: RequestId) -> StaffTokenOut:
    now = ctx.clock()
    verdict = await staff.verify_password_of(
        ctx.autocommit, body.username, body.password, now=now, unknown=ctx.rate_limits
    )
    try:
        async with ctx.db.begin() as session:
            user = await staff.authenticate(session, verdict, now=now, unknown=ctx.rate_limits)
            token = await staff.issue_staff_token(session, ctx.keys, ctx.settings, user, now)
            audit.record(
                session,
                event_type="staff.sign_in",
                outcome="succeeded",
                now=now,
                actor=f"staff:{user.username}",
                request_id=request_id,
            )
    except (InvalidStaffCredentials, StaffSignInLocked) as refusal:
        async with ctx.db.begin() as session:
            if isinstance(refusal, InvalidStaffCredentials):
                await staff.record_failed_sign_in(
                    session, body.username, now=now, settings=ctx.settings
                )
            audit.record(
                session,
                event_type=refusal.audit_event or "staff.sign_in",
                outcome=refusal.code,
                now=now,
                actor=f"staff:{body.username[:64]}",
                request_id=request_id,
            )
        raise
    return StaffTokenOut(
        access_token=token, expires_in=ctx.settings.staff_token_ttl_seconds, role=user.role
    )


@reviewing.get("/cases", tags=["admin: review cases"], response_model=Page[CaseSummary])
async def list_cases(
    ctx: Ctx,
    status: ReviewStatus | None = None,
    reason: ReviewReason | None = None,
    min_age_hours: AgeHours = None,
    max_age_hours: AgeHours = None,
    sort: review.CaseSort = "created_at",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[CaseSummary]:
    """The review queue, oldest first by default; citizen IDs masked."""
    async with ctx.db() as session:
        rows, total = await review.list_cases(
            session,
            now=ctx.clock(),
            status=status,
            reason=reason,
            min_age_hours=min_age_hours,
            max_age_hours=max_age_hours,
            sort=sort,
            limit=limit,
            offset=offset,
        )
    return Page(items=[CaseSummary.of(c) for c in rows], total=total, limit=limit, offset=offset)


@reviewing.get("/cases/{case_id}", tags=["admin: review cases"], response_model=CaseDetail)
async def get_case(case_id: RowId, ctx: Ctx) -> CaseDetail:
    """One case: VNeID's verified claims against each candidate account, and why it is here."""
    async with ctx.db() as session:
        case = await review.get_case(session, case_id)
        return CaseDetail.detail(case, await review.evidence(session, case))


@reviewing.post(
    "/cases/{case_id}/approve",
    tags=["admin: review cases"],
    response_model=CaseDetail,
    responses={409: {"description": "decided already, or a link exists", **PROBLEM}},
)
async def approve_case(
    case_id: RowId, body: Approve, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Link the case's VNeID identity to the chosen candidate account."""
    async with ctx.db.begin() as session:
        case = await review.approve(
            session,
            case_id,
            version=body.version,
            account_id=body.account_id,
            decider=decider(user),
            reason=body.reason,
            now=ctx.clock(),
            request_id=request_id,
        )
        return CaseDetail.detail(case, await review.evidence(session, case))


@reviewing.post(
    "/cases/{case_id}/reject",
    tags=["admin: review cases"],
    response_model=CaseDetail,
    responses={409: {"description": "decided already", **PROBLEM}},
)
async def reject_case(
    case_id: RowId, body: Reject, user: Staff, ctx: Ctx, request_id: RequestId
) -> CaseDetail:
    """Refuse the link; the person is told at their next login to contact the agency."""
    async with ctx.db.begin() as session:
        case = await review.reject(
            session,
            case_id,
            version=body.version,
            decider=decider(user),
            reason=body.reason,
            now=ctx.clock(),
            request_id=request_id,
        )
        return CaseDetail.detail(case, await review.evidence(session, case))


@reviewing.get(
    "/accounts/{account_id}/identities", tags=["admin: links"], response_model=list[LinkOut]
)
async def list_identities(account_id: RowId, ctx: Ctx) -> list[LinkOut]:
    """The VNeID identities linked to an account."""
    async with ctx.db() as session:
        return [LinkOut.of(link) for link in await review.account_links(session, account_id)]


@administering.post(
    "/accounts/{account_id}/identities/{link_id}/unlink",
    tags=["admin: links"],
    response_model=UnlinkedOut,
)
async def unlink_identity(
    account_id: RowId, link_id: RowId, body: Unlink, user: Staff, ctx: Ctx, request_id: RequestId
) -> UnlinkedOut:
    """Admins only: remove a link and revoke the account's refresh tokens and browser sessions."""
    async with ctx.db.begin() as session:
        result = await review.unlink(
            session,
            account_id=account_id,
            link_id=link_id,
            decider=decider(user),
            reason=body.reason,
            now=ctx.clock(),
            request_id=request_id,
            refresh=ctx.refresh_tokens,
        )
    return UnlinkedOut(
        link_id=result.link_id,
        app_sessions_ended=result.app_sessions_ended,
        browser_sessions_ended=result.browser_sessions_ended,
    )


@administering.get("/audit", tags=["admin: audit"], response_model=Page[AuditEventOut])
async def audit_trail(
    ctx: Ctx,
    account_id: RowIdFilter = None,
    case_id: CaseIdInAudit = None,
    actor: Annotated[str | None, Query(max_length=100, description="e.g. staff:alice")] = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> Page[AuditEventOut]:
    """Admins only: the audit trail, newest first."""
    async with ctx.db() as session:
        rows, total = await audit.search(
            session,
            account_id=account_id,
            case_id=case_id,
            actor=actor,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    return Page(items=[AuditEventOut.of(e) for e in rows], total=total, limit=limit, offset=offset)


router.include_router(reviewing)
router.include_router(administering)
