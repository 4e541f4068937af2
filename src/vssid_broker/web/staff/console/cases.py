"""The review queue and one case, in the console: the queue's filters, the case page (an
audited read of the candidates' data), and one form per action on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import audited_reads
from vssid_broker.admin import service as staff
from vssid_broker.errors.staff import UnknownConsoleAction
from vssid_broker.linking import consent, decisions, review
from vssid_broker.linking.models import ReviewCase, ReviewReason, ReviewStatus
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.staff.console.base import (
    Console,
    SignedIn,
    console_router,
    form_of,
    page,
    reason_of,
    see_other,
)

router = console_router()
PAGE_SIZE = 20
AGE_FILTERS = {"": (None, None), "overdue": ("target", None), "today": (None, 24)}


@router.get("/cases", response_class=HTMLResponse)
async def queue(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    status: Annotated[str, Query(max_length=20)] = "pending",
    reason: Annotated[str, Query(max_length=40)] = "",
    age: Annotated[str, Query(max_length=10)] = "",
    assigned: Annotated[str, Query(max_length=10)] = "",
    sort: review.CaseSort = "created_at",
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    console.require(staff.READS_CASES)
    now = ctx.clock()
    target = ctx.settings.review_target_hours
    min_age, max_age = AGE_FILTERS.get(age, (None, None))
    async with ctx.db() as session:
        rows, total = await review.list_cases(
            session,
            now=now,
            status=ReviewStatus(status) if status in set(ReviewStatus) else None,
            reason=ReviewReason(reason) if reason in set(ReviewReason) else None,
            min_age_hours=target if min_age == "target" else None,
            max_age_hours=max_age,
            assigned_to={"mine": console.user.username, "none": ""}.get(assigned),
            sort=sort,
            limit=PAGE_SIZE,
            offset=(page_number - 1) * PAGE_SIZE,
        )
        counts = await review.count_by_status(session)
    filters = {"status": status, "reason": reason, "age": age, "assigned": assigned, "sort": sort}
    pages = max(1, -(-total // PAGE_SIZE))
    return page(
        request,
        "queue.html",
        console,
        cases=rows,
        total=total,
        counts=counts,
        filters=filters,
        page_number=page_number,
        pages=pages,
        page_url=lambda n: "/admin/cases?" + urlencode({**filters, "page": n}),
        age_hours=lambda case: int((now - case.created_at) / timedelta(hours=1)),
        target_hours=target,
    )


# --- one case -----------------------------------------------------------------------------------
async def _case_page(
    request: Request, ctx: Ctx, console: Console, case_id: int, revealed: str | None = None
) -> Response:
    console.require(staff.READS_CASES)
    async with ctx.db.begin() as session:
        # Reading a person's evidence is a read of personal data: who, which case, whom.
        case, found = await audited_reads.case_evidence(
            session, case_id, console.reader(ctx, request.state.request_id)
        )
    now = ctx.clock()
    return page(
        request,
        "case.html",
        console,
        case=case,
        candidates=found,
        why=review.WHY.get(ReviewReason(case.reason), case.reason)
        if case.reason in set(ReviewReason)
        else case.reason,
        revealed=revealed,
        age_hours=int((now - case.created_at) / timedelta(hours=1)),
        target_hours=ctx.settings.review_target_hours,
        four_eyes=ctx.settings.review_four_eyes,
        own_proposal=case.decided_by == console.actor,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, ctx: Ctx, console: SignedIn, case_id: int) -> Response:
    return await _case_page(request, ctx, console, case_id)


@router.post("/cases/{case_id}/citizen-id", response_class=HTMLResponse)
async def reveal_case_citizen_id(
    request: Request, ctx: Ctx, console: SignedIn, case_id: int, request_id: RequestId
) -> Response:
    await form_of(request, ctx, console)
    console.require(staff.READS_CASES)
    async with ctx.db.begin() as session:
        shown = await audited_reads.case_citizen_id(
            session, case_id, console.reader(ctx, request_id)
        )
    return await _case_page(request, ctx, console, case_id, revealed=shown)


def _version(form: dict[str, str]) -> int:
    value = form.get("version", "")
    return int(value) if value.isdigit() else -1


@router.post("/cases/{case_id}/{action}")
async def act_on_case(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    case_id: int,
    action: str,
    request_id: RequestId,
) -> Response:
    """Claim, release, approve, reject, close, confirm, return: one form each on the case page."""
    form = await form_of(request, ctx, console)
    me = console.decider
    now = ctx.clock()
    common: dict[str, Any] = {"now": now, "request_id": request_id}
    decided: ReviewCase | None = None
    async with ctx.db.begin() as session:
        match action:
            case "claim" | "release":
                console.require(staff.READS_CASES)
                await decisions.assign(
                    session, case_id, to=console.user.username if action == "claim" else None,
                    actor=me, may_reassign=console.can(staff.MANAGES_STAFF), **common,
                )  # fmt: skip
            case "approve":
                console.require(staff.DECIDES)
                account = form.get("account_id", "")
                decided = await decisions.approve(
                    session, case_id, version=_version(form),
                    account_id=int(account) if account.isdigit() else -1, decider=me,
                    reason=reason_of(form, required=True), four_eyes=ctx.settings.review_four_eyes,
                    consent_terms=consent.Terms.of_review_case(ctx.settings), **common,
                )  # fmt: skip
            case "reject" | "close":
                console.require(staff.DECIDES)
                await decisions.reject(
                    session, case_id, version=_version(form), decider=me,
                    reason=reason_of(form, required=True) or "",
                    status=ReviewStatus.REJECTED if action == "reject" else ReviewStatus.CLOSED,
                    **common,
                )  # fmt: skip
            case "confirm":
                console.require(staff.CONFIRMS)
                await decisions.confirm(
                    session, case_id, version=_version(form), confirmer=me,
                    reason=reason_of(form, required=False),
                    consent_terms=consent.Terms.of_review_case(ctx.settings), **common,
                )  # fmt: skip
            case "return":
                console.require(staff.CONFIRMS)
                await decisions.return_to_queue(
                    session, case_id, version=_version(form), confirmer=me,
                    reason=reason_of(form, required=True) or "", **common,
                )  # fmt: skip
            case _:
                raise UnknownConsoleAction(f"no action {action!r}")
    # Under four eyes, "approve" by a reviewer only proposes: the banner must say so.
    if decided is not None and decided.status == ReviewStatus.PROPOSED:
        action = "propose"
    return see_other(f"/admin/cases/{case_id}?done={action}")
