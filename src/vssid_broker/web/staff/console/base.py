"""What the console's pages share: the signed-in staff member of a request (the cookie, the
second factor past or not), the checked form, the page rendering and its labels.

The cookie is the console's own (`vssid_staff`, path /admin, HttpOnly, SameSite=Lax, Secure on
https); every form carries the session's CSRF token and a foreign Origin is refused. Roles are
checked by the same capability lists as the API (`admin.service`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from vssid_broker.admin import console_sessions
from vssid_broker.admin import service as staff
from vssid_broker.admin.audited_reads import Reader
from vssid_broker.admin.models import StaffConsoleSession, StaffRole, StaffUser
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.errors.staff import ReasonRequired
from vssid_broker.identifiers import mask_citizen_id
from vssid_broker.linking.decisions import Decider
from vssid_broker.linking.models import ReviewReason, ReviewStatus
from vssid_broker.login import staff as staff_sign_in
from vssid_broker.web.deps import Ctx, require_same_origin
from vssid_broker.web.rendering import templates


def console_router() -> APIRouter:
    return APIRouter(prefix="/admin", include_in_schema=False)


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
    ReviewReason.CITIZEN_ID_CHANGED: "Cơ quan BHXH đổi số định danh của hồ sơ đã liên kết",
}
ROLE_LABELS = {
    StaffRole.REVIEWER: "Cán bộ kiểm tra",
    StaffRole.APPROVER: "Cán bộ phê duyệt",
    StaffRole.AUDITOR: "Kiểm toán viên",
    StaffRole.ADMIN: "Quản trị",
}
ACCOUNT_STATUS_LABELS = {"active": "Đang hoạt động", "locked": "Đã khoá", "closed": "Đã đóng"}
STAFF_CHANGE_LABELS: dict[staff.StaffChange, str] = {
    "role": "đổi vai trò",
    "reset_password": "đặt lại mật khẩu",
    "reset_second_factor": "đặt lại xác thực hai lớp",
    "disable": "khoá tài khoản cán bộ",
    "enable": "mở khoá tài khoản cán bộ",
}


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

    @property
    def decider(self) -> Decider:
        return Decider(self.user.username, self.user.account_id)

    def reader(self, ctx: Ctx, request_id: str) -> Reader:
        return Reader(self.actor, request_id, ctx.clock())


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


async def find(request: Request, ctx: Ctx) -> Console | None:
    """The console session of the request's cookie, half or fully signed in."""
    found = await staff_sign_in.console_session(ctx, request.cookies.get(console_sessions.COOKIE))
    return Console(*found) if found is not None else None


async def signed_in(request: Request, ctx: Ctx) -> Console:
    """A console page's dependency: the session must be live and past its second factor."""
    found = await find(request, ctx)
    if found is not None and found.session.second_factor_at is not None:
        return found
    raise SignInFirst(ended=found is None and bool(request.cookies.get(console_sessions.COOKIE)))


SignedIn = Annotated[Console, Depends(signed_in)]


async def half_signed_in(request: Request, ctx: Ctx) -> Console:
    """Between the password and the second factor."""
    found = await find(request, ctx)
    if found is None:
        raise SignInFirst(ended=True)
    return found


HalfSignedIn = Annotated[Console, Depends(half_signed_in)]


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
            "staff_change_labels": STAFF_CHANGE_LABELS,
            "mask": mask_citizen_id,
            **context,
        },
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def reason_of(form: dict[str, str], *, required: bool) -> str | None:
    reason = form.get("reason", "").strip()[:1000]
    if required and len(reason) < 3:
        raise ReasonRequired("a decision needs a reason")
    return reason or None
