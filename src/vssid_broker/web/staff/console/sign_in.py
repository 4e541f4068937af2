"""Signing in to the console, two steps, each its own request (the story: `login.staff`): the
password opens a console session, the second factor (TOTP, or a recovery code) completes it
under a new cookie value; a first sign-in enrols the authenticator by QR code and shows the
recovery codes once. And signing out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from vssid_broker.admin import service as staff
from vssid_broker.errors import RateLimited
from vssid_broker.login import staff as staff_sign_in
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.rate_limiting import LimitSecondFactor, password_attempt
from vssid_broker.web.staff.console.base import (
    Console,
    HalfSignedIn,
    clear_cookie,
    console_router,
    find,
    form_of,
    page,
    see_other,
    set_cookie,
)

router = console_router()
WRONG_CODE = "Mã xác thực không đúng. Hãy nhập mã 6 chữ số đang hiện trong ứng dụng."


@router.get("", response_class=HTMLResponse)
async def sign_in_page(request: Request, ctx: Ctx, ended: bool = False) -> Response:
    found = await find(request, ctx)
    if found is not None and found.session.second_factor_at is not None:
        return see_other("/admin/cases")
    return page(request, "sign_in.html", None, ended=ended, error=None)


@router.post("/sign-in")
async def sign_in(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    form = await form_of(request, ctx)
    username, password = form.get("username", "")[:64], form.get("password", "")[:1024]
    try:
        async with password_attempt(request, ctx, realm="staff", identifier=username):
            raw, enrolled = await staff_sign_in.start_console_sign_in(
                ctx, username, password, request_id=request_id
            )
    except (*staff.SIGN_IN_REFUSALS, RateLimited) as refusal:
        response = page(request, "sign_in.html", None, ended=False, error=refusal.message)
        response.status_code = refusal.status
        response.headers.update(refusal.headers)
        return response
    response = see_other("/admin/second-factor" if enrolled else "/admin/enrol")
    set_cookie(response, raw, ctx)
    return response


async def _enrol_page(
    request: Request, ctx: Ctx, console: Console, error: str | None = None
) -> Response:
    offer = await staff_sign_in.offer_enrolment(ctx, console.user.id)
    return page(
        request, "enrol.html", console, secret=offer.secret, qr_svg=offer.qr_svg, error=error
    )


@router.get("/enrol", response_class=HTMLResponse)
async def enrol_page(request: Request, ctx: Ctx, console: HalfSignedIn) -> Response:
    if console.user.totp_enrolled_at is not None:
        return see_other("/admin/second-factor")
    return await _enrol_page(request, ctx, console)


@router.post("/enrol", dependencies=[LimitSecondFactor])
async def enrol(
    request: Request, ctx: Ctx, console: HalfSignedIn, request_id: RequestId
) -> Response:
    form = await form_of(request, ctx, console)
    enrolled = await staff_sign_in.enrol(
        ctx, (console.session, console.user), form.get("code", ""), request_id=request_id
    )
    if enrolled is None:
        response = await _enrol_page(request, ctx, console, error=WRONG_CODE)
        response.status_code = 401
        return response
    found = await staff_sign_in.console_session(ctx, enrolled.raw)
    assert found is not None
    response = page(request, "recovery_codes.html", Console(*found), codes=enrolled.recovery_codes)
    set_cookie(response, enrolled.raw, ctx)
    return response


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
    try:
        raw = await staff_sign_in.complete_console_sign_in(
            ctx, (console.session, console.user), form.get("code", ""), request_id=request_id
        )
    except staff.SIGN_IN_REFUSALS as refusal:
        response = page(request, "second_factor.html", console, error=refusal.message)
        response.status_code = refusal.status
        return response
    response = see_other("/admin/cases")
    set_cookie(response, raw, ctx)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    found = await find(request, ctx)
    if found is not None:
        await form_of(request, ctx, found)
        await staff_sign_in.sign_out(ctx, (found.session, found.user), request_id=request_id)
    response = see_other("/admin")
    clear_cookie(response)
    return response
