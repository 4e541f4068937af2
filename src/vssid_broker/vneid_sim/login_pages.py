"""The person's side of an authorization request: login, OTP (level 2), consent, cancel.

The authorization endpoint validates the request and calls `begin_login`; from there each
form post moves one `LoginTransaction` a step forward, and the last step sends the person
back to the client with a code or an error (RFC 6749 §4.1.2, §4.1.2.1). A form naming a
transaction that is unknown, finished, expired or at another step gets the "expired" page.

Every page is reached by GET (Post/Redirect/Get): each post answers 303 to `GET /login`, which
shows the step the transaction is at. Back in the browser then never re-sends a form ("Confirm
Form Resubmission"), and Back after the transaction ended shows a page saying it ended and
where the answer went, instead of a live-looking login page whose result can only be refused.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from . import dialect
from .authorization import UNMET_AUTHENTICATION_REQUIREMENTS, reachable_acr, response_redirect
from .citizens import Citizen, released_claims
from .pages import error_page, render
from .protocol import LOCKED_MESSAGE, Refused, add_endpoint
from .state import (
    AuthorizationCode,
    AuthorizationRequest,
    LoginStep,
    LoginTransaction,
    SimState,
    VneidSession,
    new_handle,
)

MAX_OTP_ATTEMPTS = 3
SIGN_IN_COOKIE = "vneid_sim_sign_in"
"""The browser's sign-in session at the simulator (its `sid`): single sign-on."""
CLAIM_LABELS = {
    "SoDinhDanh": "Số định danh cá nhân",
    "HoVaTen": "Họ và tên",
    "birthdate": "Ngày sinh",
    "gender": "Giới tính",
}
"""What the consent page lists, one line per kind of data (both name styles count once)."""


STEP_PAGE_PATH = "/login"
"""The login transaction's pages, by GET (the same path takes the passcode form by POST)."""


def begin_login(
    state: SimState, auth_request: AuthorizationRequest, sign_in_cookie: str | None = None
) -> RedirectResponse:
    """Open a login transaction for a validated request and send the browser to its first
    page: the passcode, or, when the browser's sign-in session may answer, straight the
    consent page. The authorization URL (which holds the client's single-use `state`) leaves
    the history, so Back can never start a second login with it."""
    login = LoginTransaction(
        login_id=new_handle(),
        request=auth_request,
        expires_at=state.now() + state.settings.login_ttl_seconds,
    )
    state.logins[login.login_id] = login
    reused = reusable_sign_in(state, auth_request, sign_in_cookie)
    if reused is not None:
        sid, session = reused
        login.sid, login.citizen_id = sid, session.citizen_id
        login.auth_time, login.amr = session.auth_time, session.amr
        login.step = "consent"
    return to_step_page(state, login)


def to_step_page(state: SimState, login: LoginTransaction) -> RedirectResponse:
    """303: whatever a form post did, the browser shows the result with a GET."""
    location = state.endpoint(STEP_PAGE_PATH) + "?" + urlencode({"login_id": login.login_id})
    return RedirectResponse(location, status_code=303)


async def show_step(state: SimState, request: Request) -> Response:
    """The page of the step the transaction is at, with its one-time notice."""
    login = state.logins.get(request.query_params.get("login_id", ""))
    if login is None or login.expires_at <= state.now():
        raise expired(state)
    notice, login.notice = login.notice, None
    if login.step == "finished":
        return render(
            "finished.html",
            issuer=state.settings.issuer,
            client_name=state.clients[login.request.client_id].client_name,
            client_uri=state.clients[login.request.client_id].client_uri,
        )
    if login.step == "locked":
        return locked_page(state, login)
    if login.step == "login" or login.citizen_id is None:
        return render_login_page(state, login, error=notice)
    citizen = state.citizens[login.citizen_id]
    if login.step == "otp":
        return show_otp(state, login, citizen, error=notice)
    return show_consent(state, login, citizen)


def reusable_sign_in(
    state: SimState, auth_request: AuthorizationRequest, sid: str | None
) -> tuple[str, VneidSession] | None:
    """The browser's sign-in session, if this request may be answered from it (OIDC Core
    §3.1.2.1): not with `prompt=login`, not when it is older than `max_age`, not when the
    person's level falls short of an essential `acr` or their account is locked meanwhile."""
    session = state.sessions.get(sid or "")
    if sid is None or session is None or session.expires_at <= state.now():
        return None
    if "login" in auth_request.prompt:
        return None
    max_age = auth_request.max_age
    if max_age is not None and state.now() - session.auth_time > max_age:
        return None
    citizen = state.citizens.get(session.citizen_id)
    if citizen is None or citizen.locked:
        return None
    if reachable_acr(citizen.level, auth_request.essential_acr) is None:
        return None
    return sid, session


def render_login_page(
    state: SimState, login: LoginTransaction, error: str | None = None
) -> HTMLResponse:
    client = state.clients[login.request.client_id]
    return render(
        "login.html",
        issuer=state.settings.issuer,
        login_id=login.login_id,
        client_name=client.client_name,
        error=error,
        prefill=login.request.login_hint or "",
        citizens=[state.citizens[cid] for cid in state.listed_citizen_ids],
    )


def expired(state: SimState) -> Refused:
    return Refused(
        error_page(
            state.settings.issuer,
            "Phiên đăng nhập không còn hiệu lực",
            "Phiên đăng nhập đã hết hạn hoặc không tồn tại. Vui lòng quay lại ứng dụng và thử lại.",
            detail="The login transaction is unknown, finished or expired.",
        )
    )


def live_login(state: SimState, form: FormData, step: LoginStep | None) -> LoginTransaction:
    """The transaction the form names, still running and (unless `step` is None) at `step`,
    so a replayed or out-of-order form cannot skip a step."""
    login = state.logins.get(str(form.get("login_id", "")))
    if login is None or login.expires_at <= state.now() or login.step == "finished":
        raise expired(state)
    if step is not None and login.step != step:
        raise expired(state)
    return login


def back_to_client(
    state: SimState, login: LoginTransaction, result: dict[str, str]
) -> RedirectResponse:
    """End the transaction and send the person to the client's redirect URI (RFC 6749
    §4.1.2 with `iss`, RFC 9207). 303, so the browser follows a POSTed form with a GET.
    The ended transaction stays until it expires, only to tell Back that it ended."""
    login.step = "finished"
    location = response_redirect(state, login.request.redirect_uri, login.request.state, result)
    return RedirectResponse(location, status_code=303)


def access_denied(description: str) -> dict[str, str]:
    """The authorization error for a person who did not let the client in (RFC 6749 §4.1.2.1)."""
    return {"error": "access_denied", "error_description": description}


def show_otp(
    state: SimState, login: LoginTransaction, citizen: Citizen, error: str | None = None
) -> HTMLResponse:
    return render(
        "otp.html",
        issuer=state.settings.issuer,
        login_id=login.login_id,
        masked_phone=citizen.masked_phone,
        otp_hint=state.settings.otp_code,
        error=error,
    )


def show_consent(state: SimState, login: LoginTransaction, citizen: Citizen) -> HTMLResponse:
    """The consent page lists exactly what the granted scopes release, nothing more."""
    released = released_claims(citizen, login.request.scope)
    shown = {
        "SoDinhDanh": citizen.citizen_id,
        "HoVaTen": citizen.full_name,
        "birthdate": citizen.birthdate.strftime("%d/%m/%Y"),
        "gender": "Nam" if citizen.gender == "male" else "Nữ",
    }
    return render(
        "consent.html",
        issuer=state.settings.issuer,
        login_id=login.login_id,
        client_name=state.clients[login.request.client_id].client_name,
        citizen=citizen,
        shared=[(label, shown[name]) for name, label in CLAIM_LABELS.items() if name in released],
        # Answered from the sign-in session: the person may be someone else at this browser.
        signed_in_before=login.sid is not None,
    )


def checked_credentials(state: SimState, login: LoginTransaction, form: FormData) -> Citizen:
    """The citizen whose ID and passcode were typed; otherwise the login page again, with one
    message for either mistake, as a real login page does not say which of the two was wrong."""
    citizen = state.citizens.get(str(form.get("so_dinh_danh", "")).strip())
    passcode = str(form.get("mat_khau", ""))
    if citizen is None or not secrets.compare_digest(passcode.encode(), citizen.passcode.encode()):
        login.notice = "Số định danh cá nhân hoặc mật khẩu không đúng."
        raise Refused(to_step_page(state, login))
    return citizen


def check_not_locked(state: SimState, login: LoginTransaction, citizen: Citizen) -> None:
    """A locked VNeID account may not sign in (403). Its "return" button ends the
    transaction with access_denied carrying the reason."""
    if not citizen.locked:
        return
    login.cancel_description = LOCKED_MESSAGE
    login.step = "locked"
    raise Refused(to_step_page(state, login))


def locked_page(state: SimState, login: LoginTransaction) -> HTMLResponse:
    return error_page(
        state.settings.issuer,
        "Không thể đăng nhập",
        LOCKED_MESSAGE + ".",
        status_code=403,
        detail="Liên hệ cơ quan Công an nơi cư trú để được hỗ trợ mở khoá.",
        step="locked",
        login_id=login.login_id,
    )


async def submit_login(state: SimState, request: Request) -> Response:
    """Step 1, the passcode. Level 2 needs a second factor (OTP) before consent."""
    form = await request.form()
    login = live_login(state, form, None)
    # A login answered from the sign-in session may still be signed in as someone else.
    if login.step != "login" and not (login.step == "consent" and login.sid is not None):
        raise expired(state)
    citizen = checked_credentials(state, login, form)
    login.step, login.sid = "login", None
    check_not_locked(state, login, citizen)
    login.citizen_id = citizen.citizen_id
    if reachable_acr(citizen.level, login.request.essential_acr) is None:
        # OIDC Core §5.5.1.1: an essential acr the person cannot reach ends the request
        # here, before consent, so nothing about them is shared.
        return back_to_client(
            state,
            login,
            {
                "error": UNMET_AUTHENTICATION_REQUIREMENTS,
                "error_description": "Tài khoản chưa đạt mức độ xác thực được yêu cầu.",
            },
        )
    if citizen.level == 2:
        login.step = "otp"
        return to_step_page(state, login)
    login.auth_time = int(state.now())
    login.amr = ("pwd",)
    login.step = "consent"
    return to_step_page(state, login)


async def submit_otp(state: SimState, request: Request) -> Response:
    """Step 2 for level 2: the one-time code, with `MAX_OTP_ATTEMPTS` tries in all; after
    that the person goes back to the client with access_denied."""
    form = await request.form()
    login = live_login(state, form, "otp")
    if login.citizen_id is None:
        raise expired(state)
    otp = str(form.get("otp", "")).strip()
    if not secrets.compare_digest(otp.encode(), state.settings.otp_code.encode()):
        login.failed_otp_attempts += 1
        if login.failed_otp_attempts >= MAX_OTP_ATTEMPTS:
            return back_to_client(
                state, login, access_denied("Nhập sai mã OTP quá số lần cho phép.")
            )
        remaining = MAX_OTP_ATTEMPTS - login.failed_otp_attempts
        login.notice = f"Mã OTP không đúng. Còn {remaining} lần thử."
        return to_step_page(state, login)
    login.auth_time = int(state.now())
    login.amr = ("pwd", "otp")
    login.step = "consent"
    return to_step_page(state, login)


async def submit_consent(state: SimState, request: Request) -> Response:
    """Last step: "Đồng ý" issues a single-use code (RFC 6749 §4.1.2), "Huỷ" is
    access_denied (§4.1.2.1)."""
    form = await request.form()
    login = live_login(state, form, "consent")
    if login.citizen_id is None or login.auth_time is None:
        raise expired(state)
    decision = form.get("quyet_dinh")
    if decision == "huy":
        return back_to_client(
            state, login, access_denied("Người dùng không đồng ý chia sẻ thông tin.")
        )
    if decision != "dong_y":
        issuer = state.settings.issuer
        return error_page(issuer, "Yêu cầu không hợp lệ", "Thiếu lựa chọn Đồng ý hoặc Huỷ.")
    code_value = dialect.new_code(state) if dialect.speaks_dialect(state) else new_handle()
    sid = login.sid
    if sid is None or sid not in state.sessions:
        sid = new_handle(16)
        state.sessions[sid] = VneidSession(
            login.citizen_id,
            state.now() + state.settings.session_ttl_seconds,
            auth_time=login.auth_time,
            amr=login.amr,
        )
    state.codes[code_value] = AuthorizationCode(
        request=login.request,
        citizen_id=login.citizen_id,
        auth_time=login.auth_time,
        amr=login.amr,
        expires_at=state.now() + state.settings.code_ttl_seconds,
        sid=sid,
    )
    response = back_to_client(state, login, {"code": code_value})
    response.set_cookie(
        SIGN_IN_COOKIE,
        sid,
        max_age=int(state.settings.session_ttl_seconds),
        httponly=True,
        samesite="lax",
        secure=state.settings.issuer.startswith("https://"),
    )
    return response


async def cancel(state: SimState, request: Request) -> RedirectResponse:
    """The "Quay lại ứng dụng" button, at any step: access_denied (RFC 6749 §4.1.2.1), with
    the reason when there is one (a locked account)."""
    login = live_login(state, await request.form(), None)
    description = login.cancel_description or "Người dùng đã huỷ đăng nhập."
    return back_to_client(state, login, access_denied(description))


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, STEP_PAGE_PATH, show_step, methods=["GET"])
    add_endpoint(router, state, STEP_PAGE_PATH, submit_login, methods=["POST"])
    add_endpoint(router, state, "/otp", submit_otp, methods=["POST"])
    add_endpoint(router, state, "/consent", submit_consent, methods=["POST"])
    add_endpoint(router, state, "/cancel", cancel, methods=["POST"])
    return router
