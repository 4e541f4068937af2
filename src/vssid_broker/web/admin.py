"""The admin API for staff, under /admin/api/v1: sign-in, review cases, people, staff, audit.

Thin: each route calls one service function inside one transaction and shapes the answer. The
role check is a dependency of the router a route is on, so a new route cannot forget it. Every
error is a `DomainError`, answered as problem+json. The staff console (`web/console.py`) does
the same things through the same services.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import Account
from vssid_broker.admin import people
from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.admin.schemas import (
    AccountFound,
    Approve,
    Assign,
    AuditEventOut,
    CaseDetail,
    CasePage,
    CaseSummary,
    Confirm,
    LinkOut,
    Page,
    PersonOut,
    PersonSummary,
    Reason,
    Reject,
    RevealedCitizenId,
    SessionOut,
    SessionsEnded,
    StaffChangeIn,
    StaffCreate,
    StaffOut,
    StaffSignIn,
    StaffTokenOut,
    Unlink,
    UnlinkedOut,
)
from vssid_broker.audit import service as audit
from vssid_broker.audit.models import AuditEvent
from vssid_broker.identifiers import mask_citizen_id
from vssid_broker.linking import consent, review
from vssid_broker.linking.models import ReviewCase, ReviewReason, ReviewStatus
from vssid_broker.web.deps import Ctx, RequestId, Staff, staff_with_role
from vssid_broker.web.params import AgeHours, CaseIdInAudit, Moment, Offset, RowId, RowIdFilter
from vssid_broker.web.rate_limiting import password_attempt

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def problem(description: str) -> dict[str, Any]:
    return {"description": description, **PROBLEM}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem("missing, invalid or expired staff token (`invalid_staff_token`)"),
    403: problem("the staff role does not allow this (`staff_role_required`)"),
    422: problem("invalid request (`invalid_request`)"),
}
CASE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("`staff_role_required`, `own_account_case` or `own_decision`"),
    404: problem("no such case (`case_not_found`)"),
    409: problem(
        "`case_already_decided` (decided or changed since you read it), "
        "`case_assigned_elsewhere`, `already_linked` or `account_not_active`"
    ),
    422: problem("`account_not_a_candidate` or `invalid_request`"),
}
ACCOUNT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: problem("no such account (`account_not_found`)"),
    409: problem("`account_status_unchanged`"),
}
STAFF_ERRORS: dict[int | str, dict[str, Any]] = {
    403: problem("`staff_role_required` or `staff_self_change`"),
    404: problem("`staff_user_not_found`"),
    409: problem("`staff_user_exists`"),
    422: problem("`weak_password`, `staff_citizen_id_unknown` or `invalid_request`"),
}

router = APIRouter(prefix="/admin/api/v1", responses=ERRORS)
reading_cases = APIRouter(dependencies=[staff_with_role(*staff.READS_CASES)])
"""The queue and the case: reviewers, approvers, admins."""
deciding = APIRouter(dependencies=[staff_with_role(*staff.DECIDES)])
confirming = APIRouter(dependencies=[staff_with_role(*staff.CONFIRMS)])
helping_people = APIRouter(dependencies=[staff_with_role(*staff.HELPS_PEOPLE)])
auditing = APIRouter(dependencies=[staff_with_role(*staff.READS_AUDIT)])
administering = APIRouter(dependencies=[staff_with_role(*staff.MANAGES_STAFF)])
"""Staff management and unlinking: admins only."""

CASES: list[str | Enum] = ["admin: review cases"]
PEOPLE: list[str | Enum] = ["admin: people"]


def decider(user: StaffUser) -> review.Decider:
    return review.Decider(user.username, user.account_id)


@router.post(
    "/token",
    tags=["admin: staff"],
    response_model=StaffTokenOut,
    responses={
        401: problem("`invalid_credentials` or `invalid_second_factor`"),
        403: problem("`second_factor_not_enrolled`: enrol at /admin first"),
        429: problem("`staff_sign_in_locked`"),
    },
)
async def sign_in(
    body: StaffSignIn, request: Request, ctx: Ctx, request_id: RequestId
) -> StaffTokenOut:
    """Staff sign-in with username, password and the authenticator's code; returns a
    short-lived bearer token. Wrong passwords and wrong codes count towards the lockout, and
    every attempt passes the rate limits of password sign-ins."""
    async with staff_password_checked(request, ctx, body.username, body.password, request_id) as (
        session,
        user,
    ):
        now = ctx.clock()
        factor = await staff.check_second_factor(session, user, body.otp, ctx.keys, now)
        token = await staff.issue_staff_token(session, ctx.keys, ctx.settings, user, now)
        audit.record(
            session,
            event_type="staff.sign_in",
            outcome="succeeded",
            now=now,
            actor=f"staff:{user.username}",
            request_id=request_id,
            channel="api",
            second_factor=factor,
        )
    return StaffTokenOut(
        access_token=token, expires_in=ctx.settings.staff_token_ttl_seconds, role=user.role
    )


@asynccontextmanager
async def staff_password_checked(
    request: Request, ctx: Ctx, username: str, password: str, request_id: str
) -> AsyncIterator[tuple[AsyncSession, StaffUser]]:
    """The password step of every staff sign-in (API and console): the rate limits of password
    sign-ins, the check off the event loop and outside the transaction, then the transaction in
    which the caller goes on with the user. A refusal raised in it (password, lockout, second
    factor) is recorded against the username, then raised on."""
    async with password_attempt(request, ctx, realm="staff", identifier=username):
        now = ctx.clock()
        verdict = await staff.verify_password_of(
            ctx.autocommit, username, password, now=now, unknown=ctx.rate_limits
        )
        try:
            async with ctx.db.begin() as session:
                user = await staff.authenticate(session, verdict, now=now, unknown=ctx.rate_limits)
                yield session, user
        except staff.SIGN_IN_REFUSALS as refusal:
            async with ctx.db.begin() as session:
                await staff.record_refused_sign_in(
                    session, username, refusal, now=now, settings=ctx.settings,
                    request_id=request_id,
                )  # fmt: skip
            raise


# --- the queue and the case ---------------------------------------------------------------------
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
        case = await review.get_case(session, case_id)
        evidence = await review.evidence(session, case)
        for account_id in case.candidate_account_ids:
            audit_read(session, ctx, user, request_id, "case_evidence", account_id, case.id)
        return CaseDetail.detail(case, evidence)


def audit_read(
    session: AsyncSession,
    ctx: Ctx,
    user: StaffUser,
    request_id: str,
    what: str,
    account_id: int | None,
    case_id: int | None = None,
) -> None:
    """Staff reading a person's personal data: one audit event per person read."""
    audit.record(
        session,
        event_type="personal_data.read",
        outcome=what,
        now=ctx.clock(),
        actor=decider(user).actor,
        account_id=account_id,
        request_id=request_id,
        case_id=case_id,
    )


@helping_people.get(
    "/accounts",
    tags=["admin: links"],
    response_model=list[AccountFound],
    responses={422: {"description": "not a 12-digit citizen ID", **PROBLEM}},
)
async def find_accounts(
    ctx: Ctx,
    user: Staff,
    request_id: RequestId,
    citizen_id: Annotated[str, Query(pattern=r"^\d{12}$", description="12 digits, in full")],
) -> list[AccountFound]:
    """The account carrying a citizen ID, found through its blind index (the database holds
    no citizen ID in the clear). The search is audited, and answers with the ID masked."""
    async with ctx.db.begin() as session:
        found = await accounts.find_by_citizen_id(session, citizen_id)
        audit_read(session, ctx, user, request_id, "account_search", found.id if found else None)
    return [AccountFound.of(found)] if found else []


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
        case = await review.get_case(session, case_id)
        shown = people.reveal_citizen_id(
            session, case.citizen_id, actor=f"staff:{user.username}", now=ctx.clock(),
            request_id=request_id, case_id=case.id, purpose="case",
        )  # fmt: skip
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
        case = await review.approve(
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
        case = await review.reject(
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
        case = await review.reject(
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
        case = await review.confirm(
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
        case = await review.return_to_queue(
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
        case = await review.assign(
            session, case_id, to=body.username, actor=decider(user),
            may_reassign=staff.can(user, staff.MANAGES_STAFF), now=ctx.clock(),
            request_id=request_id,
        )  # fmt: skip
        return CaseSummary.of(case)


# --- people -------------------------------------------------------------------------------------
def person_summary(account: Account) -> PersonSummary:
    return PersonSummary(
        account_id=account.id,
        bhxh_code=account.bhxh_code,
        citizen_id=mask_citizen_id(account.citizen_id) if account.citizen_id else None,
        full_name=account.full_name,
        birth_date=account.birth_date,
        status=account.status,
    )


@helping_people.get("/people", tags=PEOPLE, response_model=list[PersonSummary])
async def search_people(
    ctx: Ctx, q: Annotated[str, Query(min_length=2, max_length=200)]
) -> list[PersonSummary]:
    """Find a person by citizen ID (12 digits), BHXH code (10 digits) or full name."""
    async with ctx.db() as session:
        return [person_summary(a) for a in await accounts.search(session, q)]


@helping_people.get(
    "/people/{account_id}", tags=PEOPLE, response_model=PersonOut, responses=ACCOUNT_ERRORS
)
async def get_person(account_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId) -> PersonOut:
    """The account, its linked identities, its live sessions and its review cases (an audited
    read of the person's data)."""
    async with ctx.db.begin() as session:
        found = await people.person(
            session, ctx.refresh_tokens, account_id, ctx.clock(),
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
        )  # fmt: skip
        audit_read(session, ctx, user, request_id, "account", account_id)
    return PersonOut(
        **person_summary(found.account).model_dump(),
        identities=[LinkOut.of(link) for link in found.links],
        sessions=[SessionOut(**vars(s)) for s in found.sessions],
        cases=[CaseSummary.of(c) for c in found.cases],
    )


@helping_people.post(
    "/people/{account_id}/citizen-id",
    tags=PEOPLE,
    response_model=RevealedCitizenId,
    responses=ACCOUNT_ERRORS,
)
async def reveal_person_citizen_id(
    account_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId
) -> RevealedCitizenId:
    """The account's full citizen ID (empty if it has none); recorded in the trail."""
    async with ctx.db.begin() as session:
        account = await accounts.get_account(session, account_id)
        shown = people.reveal_citizen_id(
            session, account.citizen_id or "", actor=f"staff:{user.username}",
            now=ctx.clock(), request_id=request_id, account_id=account.id, purpose="account",
        )  # fmt: skip
    return RevealedCitizenId(citizen_id=shown)


@helping_people.post(
    "/people/{account_id}/end-sessions",
    tags=PEOPLE,
    response_model=SessionsEnded,
    responses=ACCOUNT_ERRORS,
)
async def end_person_sessions(
    account_id: RowId, body: Reason, user: Staff, ctx: Ctx, request_id: RequestId
) -> SessionsEnded:
    """End every browser session and app installation of the person."""
    async with ctx.db.begin() as session:
        ended = await people.end_sessions(
            session, ctx.refresh_tokens, account_id, actor=f"staff:{user.username}",
            reason=body.reason, now=ctx.clock(), request_id=request_id,
        )  # fmt: skip
    return SessionsEnded(
        browser_sessions_ended=ended.browser, app_sessions_ended=ended.app_families
    )


async def _set_locked(
    ctx: Ctx, account_id: int, body: Reason, user: StaffUser, request_id: str, locked: bool
) -> PersonSummary:
    async with ctx.db.begin() as session:
        await people.set_locked(
            session, ctx.refresh_tokens, account_id, locked=locked,
            actor=f"staff:{user.username}", reason=body.reason, now=ctx.clock(),
            request_id=request_id,
        )  # fmt: skip
    async with ctx.db() as session:
        return person_summary(await accounts.get_account(session, account_id))


@helping_people.post(
    "/people/{account_id}/lock", tags=PEOPLE, response_model=PersonSummary,
    responses=ACCOUNT_ERRORS,
)  # fmt: skip
async def lock_person(
    account_id: RowId, body: Reason, user: Staff, ctx: Ctx, request_id: RequestId
) -> PersonSummary:
    """Lock the account (every session ends now); the reason goes to the trail."""
    return await _set_locked(ctx, account_id, body, user, request_id, True)


@helping_people.post(
    "/people/{account_id}/unlock", tags=PEOPLE, response_model=PersonSummary,
    responses=ACCOUNT_ERRORS,
)  # fmt: skip
async def unlock_person(
    account_id: RowId, body: Reason, user: Staff, ctx: Ctx, request_id: RequestId
) -> PersonSummary:
    """Unlock a locked account; the reason goes to the trail."""
    return await _set_locked(ctx, account_id, body, user, request_id, False)


@helping_people.get(
    "/accounts/{account_id}/identities", tags=["admin: links"], response_model=list[LinkOut],
    responses=ACCOUNT_ERRORS,
)  # fmt: skip
async def list_identities(
    account_id: RowId, user: Staff, ctx: Ctx, request_id: RequestId
) -> list[LinkOut]:
    """The VNeID identities linked to an account (an audited read of the person's data)."""
    async with ctx.db.begin() as session:
        links = await review.account_links(session, account_id)
        audit_read(session, ctx, user, request_id, "account_links", account_id)
        return [LinkOut.of(link) for link in links]


@administering.post(
    "/accounts/{account_id}/identities/{link_id}/unlink",
    tags=["admin: links"],
    response_model=UnlinkedOut,
    responses={404: problem("`link_not_found`")},
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
            actor=decider(user).actor,
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


# --- the audit trail ----------------------------------------------------------------------------
AuditFilters = dict[str, Any]


async def _audit_rows(
    ctx: Ctx, filters: AuditFilters, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    async with ctx.db() as session:
        return await audit.search(session, **filters, limit=limit, offset=offset)


def audit_filters(
    account_id: RowIdFilter = None,
    case_id: CaseIdInAudit = None,
    actor: Annotated[str | None, Query(max_length=100, description="e.g. staff:alice")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilters:
    return {
        "account_id": account_id,
        "case_id": case_id,
        "actor": actor or None,
        "since": since,
        "until": until,
    }


@auditing.get("/audit", tags=["admin: audit"], response_model=Page[AuditEventOut])
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
    """Auditors and admins: the audit trail, newest first."""
    filters = audit_filters(account_id, case_id, actor, since, until)
    rows, total = await _audit_rows(ctx, filters, limit, offset)
    return Page(items=[AuditEventOut.of(e) for e in rows], total=total, limit=limit, offset=offset)


@auditing.get(
    "/audit.csv",
    tags=["admin: audit"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the filtered trail as CSV"}},
)
async def audit_csv(
    ctx: Ctx,
    user: Staff,
    request_id: RequestId,
    account_id: RowIdFilter = None,
    case_id: CaseIdInAudit = None,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    since: Moment = None,
    until: Moment = None,
) -> Response:
    """Auditors and admins: the filtered trail as CSV (at most 10 000 rows); the export itself
    is recorded."""
    filters = audit_filters(account_id, case_id, actor, since, until)
    return await audit_export(ctx, user, request_id, filters)


AUDIT_EXPORT_MAX = 10_000


async def audit_export(
    ctx: Ctx, user: StaffUser, request_id: str, filters: AuditFilters
) -> Response:
    rows, _ = await _audit_rows(ctx, filters, AUDIT_EXPORT_MAX, 0)
    async with ctx.db.begin() as session:
        audit.record(
            session, event_type="audit.exported", outcome="csv", now=ctx.clock(),
            actor=f"staff:{user.username}", request_id=request_id, rows=len(rows),
        )  # fmt: skip
    return Response(
        audit_csv_text(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def audit_csv_text(rows: list[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "occurred_at", "event_type", "outcome", "actor", "account_id",
                     "request_id", "details"])  # fmt: skip
    for e in rows:
        details = ";".join(f"{k}={v}" for k, v in sorted(e.details.items()))
        writer.writerow([e.id, e.occurred_at.isoformat(), e.event_type, e.outcome,
                         e.actor, e.account_id or "", e.request_id or "", details])  # fmt: skip
    return out.getvalue()


# --- staff management -------------------------------------------------------------------------
def staff_out(user: StaffUser) -> StaffOut:
    return StaffOut(
        id=user.id,
        username=user.username,
        role=user.role,
        bound_to_own_account=user.account_id is not None,
        second_factor_enrolled=user.totp_enrolled_at is not None,
        disabled=user.disabled_at is not None,
        locked_until=user.locked_until,
        created_at=user.created_at,
    )


@administering.get("/staff", tags=["admin: staff"], response_model=list[StaffOut])
async def list_staff(ctx: Ctx) -> list[StaffOut]:
    """Every staff user, with role and second-factor state."""
    async with ctx.db() as session:
        return [staff_out(u) for u in await staff.list_staff(session)]


@administering.post(
    "/staff", tags=["admin: staff"], response_model=StaffOut, status_code=201,
    responses=STAFF_ERRORS,
)  # fmt: skip
async def create_staff(body: StaffCreate, user: Staff, ctx: Ctx, request_id: RequestId) -> StaffOut:
    """Create a staff user; they enrol their second factor at their first console sign-in."""
    now = ctx.clock()
    async with ctx.db.begin() as session:
        created = await staff.create_staff_user(
            session, username=body.username, password=body.password,
            role=StaffRole(body.role), now=now, citizen_id=body.citizen_id,
        )  # fmt: skip
        staff.record_created(
            session, created, actor=f"staff:{user.username}", now=now, request_id=request_id
        )
        return staff_out(created)


@administering.post(
    "/staff/{staff_id}", tags=["admin: staff"], response_model=StaffOut, responses=STAFF_ERRORS
)
async def change_staff(
    staff_id: RowId, body: StaffChangeIn, user: Staff, ctx: Ctx, request_id: RequestId
) -> StaffOut:
    """Disable, enable, reset the password, reset the second factor, or change the role."""
    async with ctx.db.begin() as session:
        target = await staff.get_staff(session, staff_id)
        await staff.change_staff(
            session, target, body.change, actor=f"staff:{user.username}", now=ctx.clock(),
            request_id=request_id, password=body.password,
            role=StaffRole(body.role) if body.role else None,
        )  # fmt: skip
        return staff_out(target)


for part in (reading_cases, deciding, confirming, helping_people, auditing, administering):
    router.include_router(part)
