"""The staff console at /admin: server-rendered pages over the same services as the admin API.

Sign-in is two steps, each its own request: the password opens a console session, the second
factor (TOTP, or a recovery code) completes it under a new cookie value; a first sign-in
enrols the authenticator by QR code and shows the recovery codes once. The cookie is the
console's own (`vssid_staff`, path /admin, HttpOnly, SameSite=Lax, Secure on https); every
form carries the session's CSRF token and a foreign Origin is refused. Roles are checked by
the same capability lists as the API (`admin.service`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vssid_broker.accounts import service as accounts
from vssid_broker.admin import console_sessions, people, second_factor
from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffConsoleSession, StaffRole, StaffUser
from vssid_broker.audit import service as audit
from vssid_broker.errors import RateLimited
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.errors.staff import (
    ReasonRequired,
    UnknownConsoleAction,
)
from vssid_broker.identifiers import mask_citizen_id
from vssid_broker.linking import consent, review
from vssid_broker.linking.models import ReviewReason, ReviewStatus
from vssid_broker.web.admin import audit_export, audit_read, staff_password_checked
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.pages import require_same_origin
from vssid_broker.web.rate_limiting import LimitSecondFactor
from vssid_broker.web.rendering import templates

router = APIRouter(prefix="/admin", include_in_schema=False)

PAGE_SIZE = 20
STATUS_LABELS = {
    ReviewStatus.PENDING: "Chờ quyết định",
    ReviewStatus.PROPOSED: "Chờ phê duyệt",
    ReviewStatus.APPROVED: "Đã liên kết",
    ReviewStatus.REJECTED: "Đã từ chối",
    ReviewStatus.CLOSED: "Đã đóng",
}
REASON_LABELS = {
    ReviewReason.NAME_BIRTHDATE_MATCH: "Hồ sơ chưa có số định danh, trùng họ tên và ngày sinh",
    ReviewReason.SEVERAL_ACCOUNTS: "Nhiều hồ sơ cùng số định danh",
    ReviewReason.ACCOUNT_LINKED_ELSEWHERE: "Hồ sơ đã liên kết danh tính VNeID khác",
    ReviewReason.SUBJECT_LINKED_ELSEWHERE: "Danh tính VNeID báo số định danh khác",
    ReviewReason.RECORD_MISMATCH: "Họ tên hoặc ngày sinh khác hồ sơ",
}
ROLE_LABELS = {
    StaffRole.REVIEWER: "Cán bộ kiểm tra",
    StaffRole.APPROVER: "Cán bộ phê duyệt",
    StaffRole.AUDITOR: "Kiểm toán viên",
    StaffRole.ADMIN: "Quản trị",
}
ACCOUNT_STATUS_LABELS = {"active": "Đang hoạt động", "locked": "Đã khoá", "closed": "Đã đóng"}


class SignInFirst(Exception):
    """A console page without a live, fully signed-in console session: not an error to show,
    a redirect to the sign-in page (which says so when a session has just ended)."""

    def __init__(self, ended: bool) -> None:
        super().__init__("console sign-in required")
        self.location = "/admin?ended=1" if ended else "/admin"


async def _to_sign_in(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInFirst)
    return RedirectResponse(error.location, status_code=303)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInFirst, _to_sign_in)


@dataclass(frozen=True)
class Console:
    """The signed-in staff member of a console request."""

    session: StaffConsoleSession
    user: StaffUser

    @property
    def actor(self) -> str:
        return f"staff:{self.user.username}"

    def can(self, roles: tuple[StaffRole, ...]) -> bool:
        return staff.can(self.user, roles)

    def require(self, roles: tuple[StaffRole, ...]) -> None:
        staff.require_role(self.user, *roles)


def set_cookie(response: Response, raw: str, ctx: Ctx) -> None:
    response.set_cookie(
        console_sessions.COOKIE,
        raw,
        max_age=ctx.settings.staff_console_ttl_seconds,
        path=console_sessions.COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(console_sessions.COOKIE, path=console_sessions.COOKIE_PATH)


async def _find(request: Request, ctx: Ctx) -> tuple[StaffConsoleSession, StaffUser] | None:
    async with ctx.db.begin() as session:
        return await console_sessions.find(
            session, request.cookies.get(console_sessions.COOKIE), ctx.clock(), ctx.settings
        )


async def signed_in(request: Request, ctx: Ctx) -> Console:
    """A console page's dependency: the session must be live and past its second factor."""
    found = await _find(request, ctx)
    if found is not None and found[0].second_factor_at is not None:
        return Console(*found)
    raise SignInFirst(ended=found is None and bool(request.cookies.get(console_sessions.COOKIE)))


SignedIn = Annotated[Console, Depends(signed_in)]


async def form_of(request: Request, ctx: Ctx, console: Console | None = None) -> dict[str, str]:
    """A console form, checked: same origin and, once a session exists, its CSRF token."""
    require_same_origin(request, ctx)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if console is not None and not console_sessions.csrf_token_matches(
        console.session, form.get("csrf_token")
    ):
        raise CsrfRefused("console form without this session's CSRF token")
    return form


def page(request: Request, name: str, console: Console | None, **context: Any) -> Response:
    return templates.TemplateResponse(
        request,
        f"console/{name}",
        {
            "console": console,
            "csrf_token": console.session.csrf_token if console else None,
            "staff_svc": staff,
            "status_labels": STATUS_LABELS,
            "reason_labels": REASON_LABELS,
            "role_labels": ROLE_LABELS,
            "account_status_labels": ACCOUNT_STATUS_LABELS,
            "mask": mask_citizen_id,
            **context,
        },
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- sign-in ------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
async def sign_in_page(request: Request, ctx: Ctx, ended: bool = False) -> Response:
    found = await _find(request, ctx)
    if found is not None and found[0].second_factor_at is not None:
        return see_other("/admin/cases")
    return page(request, "sign_in.html", None, ended=ended, error=None)


@router.post("/sign-in")
async def sign_in(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    form = await form_of(request, ctx)
    username, password = form.get("username", "")[:64], form.get("password", "")[:1024]
    now = ctx.clock()
    try:
        async with staff_password_checked(request, ctx, username, password, request_id) as (
            session,
            user,
        ):
            raw = console_sessions.start(session, user, now=now, settings=ctx.settings)
            enrolled = user.totp_enrolled_at is not None
    except (*staff.SIGN_IN_REFUSALS, RateLimited) as refusal:
        response = page(request, "sign_in.html", None, ended=False, error=refusal.message)
        response.status_code = refusal.status
        response.headers.update(refusal.headers)
        return response
    response = see_other("/admin/second-factor" if enrolled else "/admin/enrol")
    set_cookie(response, raw, ctx)
    return response


async def half_signed_in(request: Request, ctx: Ctx) -> Console:
    """Between the password and the second factor."""
    found = await _find(request, ctx)
    if found is None:
        raise SignInFirst(ended=True)
    return Console(*found)


HalfSignedIn = Annotated[Console, Depends(half_signed_in)]


@router.get("/enrol", response_class=HTMLResponse)
async def enrol_page(request: Request, ctx: Ctx, console: HalfSignedIn) -> Response:
    if console.user.totp_enrolled_at is not None:
        return see_other("/admin/second-factor")
    async with ctx.db.begin() as session:
        user = await session.get_one(StaffUser, console.user.id)
        secret = second_factor.offer_secret(user, ctx.keys)
    uri = second_factor.provisioning_uri(secret, user.username)
    return page(
        request, "enrol.html", console, secret=secret, qr_svg=second_factor.qr_svg(uri),
        error=None,
    )  # fmt: skip


@router.post("/enrol", dependencies=[LimitSecondFactor])
async def enrol(
    request: Request, ctx: Ctx, console: HalfSignedIn, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    now = ctx.clock()
    async with ctx.db.begin() as session:
        user = await session.get_one(StaffUser, console.user.id)
        codes = await second_factor.confirm_enrolment(
            session, user, form.get("code", ""), ctx.keys, now
        )
        if codes is not None:
            raw = await console_sessions.complete(session, console.session, now)
            audit.record(
                session, event_type="staff.second_factor_enrolled", outcome="totp", now=now,
                actor=console.actor, request_id=request_id,
            )  # fmt: skip
    if codes is None:
        async with ctx.db.begin() as session:
            user = await session.get_one(StaffUser, console.user.id)
            secret = second_factor.offer_secret(user, ctx.keys)
        uri = second_factor.provisioning_uri(secret, user.username)
        response = page(
            request, "enrol.html", console, secret=secret, qr_svg=second_factor.qr_svg(uri),
            error="Mã xác thực không đúng. Hãy nhập mã 6 chữ số đang hiện trong ứng dụng.",
        )  # fmt: skip
        response.status_code = 401
        return response
    signed = await _reload(ctx, raw)
    response = page(request, "recovery_codes.html", signed, codes=codes)
    set_cookie(response, raw, ctx)
    return response


async def _reload(ctx: Ctx, raw: str) -> Console:
    async with ctx.db.begin() as session:
        found = await console_sessions.find(session, raw, ctx.clock(), ctx.settings)
    assert found is not None
    return Console(*found)


@router.get("/second-factor", response_class=HTMLResponse)
async def second_factor_page(request: Request, console: HalfSignedIn) -> Response:
    if console.user.totp_enrolled_at is None:
        return see_other("/admin/enrol")
    return page(request, "second_factor.html", console, error=None)


@router.post("/second-factor", dependencies=[LimitSecondFactor])
async def check_second_factor(
    request: Request, ctx: Ctx, console: HalfSignedIn, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    now = ctx.clock()
    try:
        async with ctx.db.begin() as session:
            user = await session.get_one(StaffUser, console.user.id)
            factor = await staff.check_second_factor(
                session, user, form.get("code", ""), ctx.keys, now
            )
            raw = await console_sessions.complete(session, console.session, now)
            audit.record(
                session, event_type="staff.sign_in", outcome="succeeded", now=now,
                actor=console.actor, request_id=request_id, channel="console",
                second_factor=factor,
            )  # fmt: skip
    except staff.SIGN_IN_REFUSALS as refusal:
        async with ctx.db.begin() as session:
            await staff.record_refused_sign_in(
                session, console.user.username, refusal, now=now, settings=ctx.settings,
                request_id=request_id,
            )  # fmt: skip
        response = page(request, "second_factor.html", console, error=refusal.message)
        response.status_code = refusal.status
        return response
    response = see_other("/admin/cases")
    set_cookie(response, raw, ctx)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    found = await _find(request, ctx)
    if found is not None:
        console = Console(*found)
        await form_of(request, ctx, console)
        now = ctx.clock()
        async with ctx.db.begin() as session:
            await console_sessions.end(session, console.session.id, now)
            audit.record(
                session, event_type="staff.sign_out", outcome="succeeded", now=now,
                actor=console.actor, request_id=request_id,
            )  # fmt: skip
    response = see_other("/admin")
    clear_cookie(response)
    return response


# --- the queue ----------------------------------------------------------------------------------
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
    request_id = request.state.request_id
    async with ctx.db.begin() as session:
        case = await review.get_case(session, case_id)
        found = await review.evidence(session, case)
        # Reading a person's evidence is a read of personal data: who, which case, whom.
        for account_id in case.candidate_account_ids:
            audit_read(session, ctx, console.user, request_id, "case_evidence", account_id, case.id)
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
        case = await review.get_case(session, case_id)
        shown = people.reveal_citizen_id(
            session, case.citizen_id, actor=console.actor, now=ctx.clock(),
            request_id=request_id, case_id=case.id, purpose="case",
        )  # fmt: skip
    return await _case_page(request, ctx, console, case_id, revealed=shown)


def _version(form: dict[str, str]) -> int:
    value = form.get("version", "")
    return int(value) if value.isdigit() else -1


def _reason(form: dict[str, str], *, required: bool) -> str | None:
    reason = form.get("reason", "").strip()[:1000]
    if required and len(reason) < 3:
        raise ReasonRequired("a decision needs a reason")
    return reason or None


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
    me = review.Decider(console.user.username, console.user.account_id)
    now = ctx.clock()
    common: dict[str, Any] = {"now": now, "request_id": request_id}
    async with ctx.db.begin() as session:
        match action:
            case "claim" | "release":
                console.require(staff.READS_CASES)
                await review.assign(
                    session, case_id, to=console.user.username if action == "claim" else None,
                    actor=me, may_reassign=console.can(staff.MANAGES_STAFF), **common,
                )  # fmt: skip
            case "approve":
                console.require(staff.DECIDES)
                account = form.get("account_id", "")
                await review.approve(
                    session, case_id, version=_version(form),
                    account_id=int(account) if account.isdigit() else -1, decider=me,
                    reason=_reason(form, required=True), four_eyes=ctx.settings.review_four_eyes,
                    consent_terms=consent.Terms.of_review_case(ctx.settings), **common,
                )  # fmt: skip
            case "reject" | "close":
                console.require(staff.DECIDES)
                await review.reject(
                    session, case_id, version=_version(form), decider=me,
                    reason=_reason(form, required=True) or "",
                    status=ReviewStatus.REJECTED if action == "reject" else ReviewStatus.CLOSED,
                    **common,
                )  # fmt: skip
            case "confirm":
                console.require(staff.CONFIRMS)
                await review.confirm(
                    session, case_id, version=_version(form), confirmer=me,
                    reason=_reason(form, required=False),
                    consent_terms=consent.Terms.of_review_case(ctx.settings), **common,
                )  # fmt: skip
            case "return":
                console.require(staff.CONFIRMS)
                await review.return_to_queue(
                    session, case_id, version=_version(form), confirmer=me,
                    reason=_reason(form, required=True) or "", **common,
                )  # fmt: skip
            case _:
                raise UnknownConsoleAction(f"no action {action!r}")
    return see_other(f"/admin/cases/{case_id}?done={action}")


# --- people -------------------------------------------------------------------------------------
@router.get("/people", response_class=HTMLResponse)
async def people_search(
    request: Request, ctx: Ctx, console: SignedIn, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    console.require(staff.HELPS_PEOPLE)
    async with ctx.db() as session:
        found = await accounts.search(session, q) if q.strip() else []
    return page(request, "people.html", console, q=q, found=found, searched=bool(q.strip()))


async def _person_page(
    request: Request, ctx: Ctx, console: Console, account_id: int, revealed: str | None = None
) -> Response:
    console.require(staff.HELPS_PEOPLE)
    async with ctx.db.begin() as session:
        found = await people.person(
            session, ctx.refresh_tokens, account_id, ctx.clock(),
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
        )  # fmt: skip
        audit_read(session, ctx, console.user, request.state.request_id, "account", account_id)
    return page(request, "person.html", console, person=found, revealed=revealed)


@router.get("/people/{account_id}", response_class=HTMLResponse)
async def person_page(request: Request, ctx: Ctx, console: SignedIn, account_id: int) -> Response:
    return await _person_page(request, ctx, console, account_id)


@router.post("/people/{account_id}/{action}")
async def act_on_person(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    account_id: int,
    action: str,
    request_id: RequestId,
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.HELPS_PEOPLE)
    now = ctx.clock()
    async with ctx.db.begin() as session:
        match action:
            case "citizen-id":
                account = await accounts.get_account(session, account_id)
                shown = people.reveal_citizen_id(
                    session, account.citizen_id or "", actor=console.actor, now=now,
                    request_id=request_id, account_id=account.id, purpose="account",
                )  # fmt: skip
            case "end-sessions":
                await people.end_sessions(
                    session, ctx.refresh_tokens, account_id, actor=console.actor,
                    reason=_reason(form, required=True) or "", now=now, request_id=request_id,
                )  # fmt: skip
            case "lock" | "unlock":
                await people.set_locked(
                    session, ctx.refresh_tokens, account_id, locked=action == "lock",
                    actor=console.actor, reason=_reason(form, required=True) or "", now=now,
                    request_id=request_id,
                )  # fmt: skip
            case _:
                raise UnknownConsoleAction(f"no action {action!r}")
    if action == "citizen-id":
        return await _person_page(request, ctx, console, account_id, revealed=shown)
    return see_other(f"/admin/people/{account_id}?done={action}")


# --- the audit trail ----------------------------------------------------------------------------
def _audit_filters(
    account_id: str, case_id: str, actor: str, since: str, until: str
) -> dict[str, Any]:
    def day(value: str, *, end: bool = False) -> datetime | None:
        """A date from the form's date field, as the start of that day in UTC (for `until`,
        the start of the next day: the day given is included)."""
        try:
            start = datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
        except ValueError:
            return None
        return start + timedelta(days=1) if start and end else start

    return {
        "account_id": int(account_id) if account_id.isdigit() else None,
        "case_id": int(case_id) if case_id.isdigit() else None,
        "actor": actor.strip() or None,
        "since": day(since),
        "until": day(until, end=True),
    }


AuditQuery = Annotated[str, Query(max_length=100)]


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    ctx: Ctx,
    console: SignedIn,
    account_id: AuditQuery = "",
    case_id: AuditQuery = "",
    actor: AuditQuery = "",
    since: AuditQuery = "",
    until: AuditQuery = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    console.require(staff.READS_AUDIT)
    raw = {"account_id": account_id, "case_id": case_id, "actor": actor, "since": since,
           "until": until}  # fmt: skip
    async with ctx.db() as session:
        rows, total = await audit.search(
            session, **_audit_filters(**raw), limit=50, offset=(page_number - 1) * 50
        )
    return page(
        request, "audit.html", console, events=rows, total=total, filters=raw,
        page_number=page_number, pages=max(1, -(-total // 50)),
        page_url=lambda n: "/admin/audit?" + urlencode({**raw, "page": n}),
        csv_url="/admin/audit.csv?" + urlencode(raw),
    )  # fmt: skip


@router.get("/audit.csv")
async def audit_csv(
    ctx: Ctx,
    console: SignedIn,
    request_id: RequestId,
    account_id: AuditQuery = "",
    case_id: AuditQuery = "",
    actor: AuditQuery = "",
    since: AuditQuery = "",
    until: AuditQuery = "",
) -> Response:
    console.require(staff.READS_AUDIT)
    filters = _audit_filters(account_id, case_id, actor, since, until)
    return await audit_export(ctx, console.user, request_id, filters)


# --- staff management ---------------------------------------------------------------------------
STAFF_CHANGES: dict[str, staff.StaffChange] = {c: c for c in get_args(staff.StaffChange)}


@router.get("/staff", response_class=HTMLResponse)
async def staff_page(request: Request, ctx: Ctx, console: SignedIn) -> Response:
    console.require(staff.MANAGES_STAFF)
    async with ctx.db() as session:
        users = await staff.list_staff(session)
    return page(request, "staff.html", console, users=users, roles=list(StaffRole))


@router.post("/staff")
async def create_staff(
    request: Request, ctx: Ctx, console: SignedIn, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.MANAGES_STAFF)
    role = form.get("role", "")
    if role not in set(StaffRole):
        raise UnknownConsoleAction(f"no role {role!r}")
    now = ctx.clock()
    async with ctx.db.begin() as session:
        created = await staff.create_staff_user(
            session, username=form.get("username", "").strip()[:64],
            password=form.get("password", ""), role=StaffRole(role), now=now,
            citizen_id=form.get("citizen_id", "").strip() or None,
        )  # fmt: skip
        staff.record_created(session, created, actor=console.actor, now=now, request_id=request_id)
    return see_other("/admin/staff?done=created")


@router.post("/staff/{staff_id}")
async def change_staff(
    request: Request, ctx: Ctx, console: SignedIn, staff_id: int, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    console.require(staff.MANAGES_STAFF)
    change = STAFF_CHANGES.get(form.get("change", ""))
    if change is None:
        raise UnknownConsoleAction("no such change")
    role = form.get("role") or None
    async with ctx.db.begin() as session:
        target = await staff.get_staff(session, staff_id)
        await staff.change_staff(
            session, target, change, actor=console.actor, now=ctx.clock(),
            request_id=request_id, password=form.get("password") or None,
            role=StaffRole(role) if role in set(StaffRole) else None,
        )  # fmt: skip
    return see_other(f"/admin/staff?done={change}")
