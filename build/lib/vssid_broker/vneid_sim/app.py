"""The simulated VNeID provider as an ASGI app: discovery, JWKS, authorization with login
pages, PAR, token, userinfo, RP-initiated logout, and (in test mode) the /_test API.

Every absolute URL is built from ``settings.issuer``, never from the request, so the app
works the same served at a root or mounted under a path prefix in another app.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from joserfc import jwt
from joserfc.errors import JoseError
from pydantic import BaseModel, Field

from .authorization import (
    SUPPORTED_ACR_VALUES,
    AuthorizationError,
    parse_authorization_request,
    response_redirect,
)
from .citizens import Citizen
from .client_auth import ASSERTION_ALGS, ClientAuthError, authenticate_client
from .config import SimSettings
from .faults import DEFAULT_SLOW_SECONDS, FAULT_NAMES, WRONG_ISSUER, Fault
from .id_tokens import issue_id_token, issue_logout_token
from .keys import SIGNING_ALG
from .pages import error_page, render
from .state import (
    AccessToken,
    AuthorizationCode,
    AuthorizationRequest,
    LoginStep,
    LoginTransaction,
    PushedRequest,
    SimState,
    new_handle,
)

PAR_URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
CODE_VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
MAX_OTP_ATTEMPTS = 3
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
IDENTITY_CLAIMS = ["name", "birthdate", "gender", "SoDinhDanh", "HoVaTen", "NgayThangNamSinh"]
LOCKED_MESSAGE = "Tài khoản định danh điện tử đã bị khoá"


class DuplicateParameterError(ValueError):
    pass


def single_valued(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Request parameters as a dict; OAuth forbids repeating a parameter (RFC 6749 §3.1)."""
    params: dict[str, str] = {}
    for name, value in items:
        if not isinstance(value, str):
            continue
        if name in params:
            raise DuplicateParameterError(name)
        params[name] = value
    return params


def oauth_error(error: str, description: str, status_code: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status_code,
        headers=NO_STORE,
    )


def client_auth_error(error: ClientAuthError) -> JSONResponse:
    response = oauth_error(
        error.error, error.description, 401 if error.error == "invalid_client" else 400
    )
    if error.basic_challenge:
        response.headers["WWW-Authenticate"] = 'Basic realm="vneid-sim"'
    return response


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def provider_metadata(state: SimState) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 and RFC 8414 metadata."""
    endpoint = state.endpoint
    return {
        "issuer": state.settings.issuer,
        "authorization_endpoint": endpoint("/authorize"),
        "token_endpoint": endpoint("/token"),
        "userinfo_endpoint": endpoint("/userinfo"),
        "jwks_uri": endpoint("/jwks"),
        "end_session_endpoint": endpoint("/logout"),
        "pushed_authorization_request_endpoint": endpoint("/par"),
        "require_pushed_authorization_requests": False,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALG],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            *IDENTITY_CLAIMS,
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(SUPPORTED_ACR_VALUES),
        "prompt_values_supported": ["login", "consent"],
        "ui_locales_supported": ["vi"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": False,
    }


def create_app(
    settings: SimSettings | None = None,
    *,
    outbound_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the simulator. `outbound_transport` routes its own HTTP calls (client JWKS,
    back-channel logout) through a custom httpx transport, e.g. an in-process ASGI app."""
    settings = settings or SimSettings()
    state = SimState(settings, outbound_transport=outbound_transport)
    app = FastAPI(
        title="Simulated VNeID",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sim = state
    app.include_router(_protocol_router(state))
    app.include_router(_login_pages_router(state))
    if settings.test_mode:
        app.include_router(_test_router(state))
    return app


def _protocol_router(state: SimState) -> APIRouter:
    router = APIRouter()
    issuer = state.settings.issuer

    @router.get("/.well-known/openid-configuration")
    @router.get("/.well-known/oauth-authorization-server")
    async def discovery() -> JSONResponse:
        metadata = provider_metadata(state)
        if state.faults.take("discovery_wrong_issuer"):
            metadata["issuer"] = WRONG_ISSUER
        return JSONResponse(metadata)

    @router.get("/jwks")
    async def jwks() -> Response:
        if state.faults.take("jwks_http_500"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        return JSONResponse(state.keys.jwks(), media_type="application/jwk-set+json")

    @router.get("/authorize")
    async def authorize(request: Request) -> Response:
        state.purge_expired()
        try:
            params = single_valued(request.query_params.multi_items())
        except DuplicateParameterError as error:
            return error_page(
                issuer, "Yêu cầu không hợp lệ", f"Tham số {error} bị lặp lại (repeated parameter)."
            )
        try:
            auth_request = (
                _take_pushed_request(params)
                if "request_uri" in params
                else parse_authorization_request(state, params)
            )
        except AuthorizationError as error:
            if error.redirect_uri is None:
                return error_page(
                    issuer,
                    "Yêu cầu đăng nhập không hợp lệ",
                    error.description,
                    detail=f"Mã lỗi: {error.error}. Không chuyển hướng về ứng dụng vì không "
                    "xác minh được ứng dụng hoặc địa chỉ chuyển hướng.",
                )
            location = response_redirect(
                state,
                error.redirect_uri,
                error.state,
                {"error": error.error, "error_description": error.description},
            )
            return RedirectResponse(location, status_code=302)
        login = LoginTransaction(
            login_id=new_handle(),
            request=auth_request,
            expires_at=state.now() + state.settings.login_ttl_seconds,
        )
        state.logins[login.login_id] = login
        return render_login_page(state, login)

    def _take_pushed_request(params: dict[str, str]) -> AuthorizationRequest:
        request_uri = params["request_uri"]
        # Single use: taken out of the store whatever happens next.
        pushed = state.pushed_requests.pop(request_uri, None)
        if pushed is None or pushed.expires_at < state.now():
            raise AuthorizationError(
                "invalid_request_uri", "request_uri không tồn tại, đã dùng hoặc đã hết hạn."
            )
        if params.get("client_id") != pushed.request.client_id:
            raise AuthorizationError(
                "invalid_request", "client_id không khớp với yêu cầu đã gửi trước (PAR)."
            )
        return pushed.request

    @router.post("/par")
    async def pushed_authorization_request(request: Request) -> Response:
        state.purge_expired()
        try:
            form = single_valued((await request.form()).multi_items())
        except DuplicateParameterError as error:
            return oauth_error("invalid_request", f"repeated parameter {error}")
        try:
            client = await authenticate_client(
                state, form, request.headers.get("authorization"), state.endpoint("/par")
            )
        except ClientAuthError as error:
            return client_auth_error(error)
        if "request_uri" in form:
            return oauth_error("invalid_request", "request_uri is not allowed at the PAR endpoint")
        if form.get("client_id", client.client_id) != client.client_id:
            return oauth_error(
                "invalid_request", "client_id does not match the authenticated client"
            )
        try:
            auth_request = parse_authorization_request(
                state, {**form, "client_id": client.client_id}
            )
        except AuthorizationError as error:
            return oauth_error(error.error, error.description)
        request_uri = PAR_URN_PREFIX + new_handle()
        ttl = state.settings.par_ttl_seconds
        state.pushed_requests[request_uri] = PushedRequest(auth_request, state.now() + ttl)
        return JSONResponse(
            {"request_uri": request_uri, "expires_in": ttl}, status_code=201, headers=NO_STORE
        )

    @router.post("/token")
    async def token(request: Request) -> Response:
        state.purge_expired()
        if state.faults.take("token_http_500"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        if state.faults.take("token_non_json"):
            return HTMLResponse("<html><body><h1>Bảo trì hệ thống</h1></body></html>")
        slow = state.faults.take("token_slow")
        if slow is not None:
            delay = DEFAULT_SLOW_SECONDS if slow.delay_seconds is None else slow.delay_seconds
            await asyncio.sleep(delay)
        if state.faults.take("token_invalid_grant"):
            return oauth_error("invalid_grant", "simulated fault token_invalid_grant")
        try:
            form = single_valued((await request.form()).multi_items())
        except DuplicateParameterError as error:
            return oauth_error("invalid_request", f"repeated parameter {error}")
        try:
            client = await authenticate_client(
                state, form, request.headers.get("authorization"), state.endpoint("/token")
            )
        except ClientAuthError as error:
            return client_auth_error(error)
        grant_type = form.get("grant_type")
        if not grant_type:
            return oauth_error("invalid_request", "grant_type is missing")
        if grant_type != "authorization_code":
            return oauth_error("unsupported_grant_type", "only authorization_code is supported")
        return _exchange_code(form, client.client_id)

    def _exchange_code(form: dict[str, str], client_id: str) -> Response:
        code = state.codes.get(form.get("code", ""))
        if code is None or code.request.client_id != client_id:
            return oauth_error("invalid_grant", "unknown authorization code")
        if code.used:
            # RFC 6749 §4.1.2: a replayed code revokes what was issued from it.
            for access_token in code.access_tokens:
                if access_token in state.access_tokens:
                    state.access_tokens[access_token].revoked = True
            return oauth_error(
                "invalid_grant", "authorization code was already used; its tokens are revoked"
            )
        code.used = True
        if code.expires_at <= state.now():
            return oauth_error("invalid_grant", "authorization code has expired")
        if form.get("redirect_uri") != code.request.redirect_uri:
            return oauth_error(
                "invalid_grant", "redirect_uri differs from the authorization request"
            )
        verifier = form.get("code_verifier", "")
        if not CODE_VERIFIER_PATTERN.fullmatch(verifier) or not secrets.compare_digest(
            s256(verifier), code.request.code_challenge
        ):
            return oauth_error("invalid_grant", "PKCE verification failed")
        citizen = state.citizens[code.citizen_id]
        if citizen.locked:
            return oauth_error("invalid_grant", LOCKED_MESSAGE)
        access_token = new_handle()
        ttl = state.settings.access_token_ttl_seconds
        state.access_tokens[access_token] = AccessToken(
            client_id=client_id,
            citizen_id=citizen.citizen_id,
            scope=code.request.scope,
            expires_at=state.now() + ttl,
        )
        code.access_tokens.append(access_token)
        state.clients_by_citizen.setdefault(citizen.citizen_id, set()).add(client_id)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": ttl,
                "id_token": issue_id_token(state, code, citizen),
                "scope": code.request.scope,
            },
            headers=NO_STORE,
        )

    @router.api_route("/userinfo", methods=["GET", "POST"])
    async def userinfo(request: Request) -> Response:
        if state.faults.take("userinfo_http_500"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        header = request.headers.get("authorization", "")
        body_token: str | None = None
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            body_token = (await request.form()).get("access_token")  # type: ignore[assignment]
        header_token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if header_token and body_token:
            return _bearer_error("invalid_request", "send the access token only once", 400)
        token_value = header_token or body_token
        if not token_value:
            return _bearer_error(None, "access token required", 401)
        record = state.access_tokens.get(token_value)
        if record is None or record.revoked or record.expires_at <= state.now():
            return _bearer_error(
                "invalid_token", "access token is unknown, revoked or expired", 401
            )
        citizen = state.citizens[record.citizen_id]
        claims: dict[str, Any] = {"sub": str(citizen.sub), **citizen.identity_claims()}
        if state.faults.take("userinfo_wrong_sub"):
            claims["sub"] = str(uuid.uuid4())
        return JSONResponse(claims, headers=NO_STORE)

    def _bearer_error(error: str | None, description: str, status_code: int) -> JSONResponse:
        challenge = 'Bearer realm="vneid-sim"'
        body: dict[str, str] = {}
        if error:
            challenge += f', error="{error}", error_description="{description}"'
            body = {"error": error, "error_description": description}
        return JSONResponse(body, status_code=status_code, headers={"WWW-Authenticate": challenge})

    @router.api_route("/logout", methods=["GET", "POST"])
    async def logout(request: Request) -> Response:
        """RP-initiated logout 1.0. The simulator keeps no login session, so logging out
        revokes the access tokens the client holds for that citizen."""
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
        client_id = params.get("client_id")
        hint = params.get("id_token_hint")
        if hint:
            try:
                hint_claims = jwt.decode(
                    hint, state.keys.public_key_set(), algorithms=[SIGNING_ALG]
                ).claims
            except (JoseError, ValueError):
                return error_page(issuer, "Không thể đăng xuất", "id_token_hint không hợp lệ.")
            if hint_claims.get("iss") != issuer:
                return error_page(
                    issuer, "Không thể đăng xuất", "id_token_hint không do VNeID cấp."
                )
            audience = hint_claims.get("aud")
            hint_client = audience if isinstance(audience, str) else None
            if client_id and hint_client and client_id != hint_client:
                return error_page(
                    issuer, "Không thể đăng xuất", "client_id không khớp id_token_hint."
                )
            client_id = client_id or hint_client
            citizen_id = state.citizen_id_by_sub.get(str(hint_claims.get("sub")))
            if citizen_id and client_id:
                state.revoke_tokens_for(citizen_id, client_id)
        target = params.get("post_logout_redirect_uri")
        if target:
            client = state.clients.get(client_id or "")
            if client is None or target not in client.post_logout_redirect_uris:
                return error_page(
                    issuer,
                    "Không thể chuyển hướng",
                    "post_logout_redirect_uri chưa được đăng ký cho ứng dụng này.",
                )
            if "state" in params:
                separator = "&" if "?" in target else "?"
                target += separator + urlencode({"state": params["state"]})
            return RedirectResponse(target, status_code=302)
        return render("logged_out.html", issuer=issuer)

    return router


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


def _login_pages_router(state: SimState) -> APIRouter:
    router = APIRouter()
    issuer = state.settings.issuer

    def expired_page() -> HTMLResponse:
        return error_page(
            issuer,
            "Phiên đăng nhập không còn hiệu lực",
            "Phiên đăng nhập đã hết hạn hoặc không tồn tại. Vui lòng quay lại ứng dụng và thử lại.",
            detail="The login transaction is unknown, finished or expired.",
        )

    def live_login(login_id: str, step: LoginStep) -> LoginTransaction | None:
        login = state.logins.get(login_id)
        if login is None or login.expires_at <= state.now() or login.step != step:
            return None
        return login

    def back_to_client(login: LoginTransaction, result: dict[str, str]) -> RedirectResponse:
        state.logins.pop(login.login_id, None)
        location = response_redirect(state, login.request.redirect_uri, login.request.state, result)
        # 303 so the browser follows a POSTed form with a GET.
        return RedirectResponse(location, status_code=303)

    def show_consent(login: LoginTransaction, citizen: Citizen) -> HTMLResponse:
        login.step = "consent"
        return render(
            "consent.html",
            issuer=issuer,
            login_id=login.login_id,
            client_name=state.clients[login.request.client_id].client_name,
            citizen=citizen,
        )

    def show_otp(
        login: LoginTransaction, citizen: Citizen, error: str | None = None
    ) -> HTMLResponse:
        return render(
            "otp.html",
            issuer=issuer,
            login_id=login.login_id,
            masked_phone=citizen.masked_phone,
            otp_hint=state.settings.otp_code,
            error=error,
        )

    @router.post("/login")
    async def submit_login(request: Request) -> Response:
        form = await request.form()
        login = live_login(str(form.get("login_id", "")), "login")
        if login is None:
            return expired_page()
        citizen = state.citizens.get(str(form.get("so_dinh_danh", "")).strip())
        passcode = str(form.get("mat_khau", ""))
        if citizen is None or not secrets.compare_digest(
            passcode.encode(), citizen.passcode.encode()
        ):
            return render_login_page(
                state, login, error="Số định danh cá nhân hoặc mật khẩu không đúng."
            )
        if citizen.locked:
            login.cancel_description = LOCKED_MESSAGE
            return error_page(
                issuer,
                "Không thể đăng nhập",
                LOCKED_MESSAGE + ".",
                status_code=403,
                detail="Liên hệ cơ quan Công an nơi cư trú để được hỗ trợ mở khoá.",
                step="locked",
                login_id=login.login_id,
            )
        login.citizen_id = citizen.citizen_id
        if citizen.level == 2:
            login.step = "otp"
            return show_otp(login, citizen)
        login.auth_time = int(state.now())
        login.amr = ("pwd",)
        return show_consent(login, citizen)

    @router.post("/otp")
    async def submit_otp(request: Request) -> Response:
        form = await request.form()
        login = live_login(str(form.get("login_id", "")), "otp")
        if login is None or login.citizen_id is None:
            return expired_page()
        citizen = state.citizens[login.citizen_id]
        otp = str(form.get("otp", "")).strip()
        if not secrets.compare_digest(otp.encode(), state.settings.otp_code.encode()):
            login.failed_otp_attempts += 1
            if login.failed_otp_attempts >= MAX_OTP_ATTEMPTS:
                return back_to_client(
                    login,
                    {
                        "error": "access_denied",
                        "error_description": "Nhập sai mã OTP quá số lần cho phép.",
                    },
                )
            remaining = MAX_OTP_ATTEMPTS - login.failed_otp_attempts
            return show_otp(login, citizen, error=f"Mã OTP không đúng. Còn {remaining} lần thử.")
        login.auth_time = int(state.now())
        login.amr = ("pwd", "otp")
        return show_consent(login, citizen)

    @router.post("/consent")
    async def submit_consent(request: Request) -> Response:
        form = await request.form()
        login = live_login(str(form.get("login_id", "")), "consent")
        if login is None or login.citizen_id is None or login.auth_time is None:
            return expired_page()
        decision = form.get("quyet_dinh")
        if decision == "huy":
            return back_to_client(
                login,
                {
                    "error": "access_denied",
                    "error_description": "Người dùng không đồng ý chia sẻ thông tin.",
                },
            )
        if decision != "dong_y":
            return error_page(issuer, "Yêu cầu không hợp lệ", "Thiếu lựa chọn Đồng ý hoặc Huỷ.")
        code_value = new_handle()
        state.codes[code_value] = AuthorizationCode(
            request=login.request,
            citizen_id=login.citizen_id,
            auth_time=login.auth_time,
            amr=login.amr,
            expires_at=state.now() + state.settings.code_ttl_seconds,
        )
        return back_to_client(login, {"code": code_value})

    @router.post("/cancel")
    async def cancel(request: Request) -> Response:
        form = await request.form()
        login = state.logins.get(str(form.get("login_id", "")))
        if login is None or login.expires_at <= state.now():
            return expired_page()
        return back_to_client(
            login,
            {
                "error": "access_denied",
                "error_description": login.cancel_description or "Người dùng đã huỷ đăng nhập.",
            },
        )

    return router


class FaultRequest(BaseModel):
    fault: str
    times: int = Field(default=1, ge=1)
    delay_seconds: float | None = Field(default=None, ge=0)


def _test_router(state: SimState) -> APIRouter:
    """Test-only controls; mounted only when settings.test_mode is on."""
    router = APIRouter(prefix="/_test")

    def pending() -> dict[str, Any]:
        return {
            "pending": [
                {"fault": f.name, "times": f.times, "delay_seconds": f.delay_seconds}
                for f in state.faults.pending()
            ],
            "known_faults": list(FAULT_NAMES),
        }

    @router.post("/faults")
    async def add_fault(body: FaultRequest) -> JSONResponse:
        if body.fault not in FAULT_NAMES:
            return JSONResponse(
                {"error": f"unknown fault {body.fault!r}", "known_faults": list(FAULT_NAMES)},
                status_code=400,
            )
        state.faults.add(Fault(body.fault, body.times, body.delay_seconds))
        return JSONResponse(pending(), status_code=201)

    @router.get("/faults")
    async def list_faults() -> JSONResponse:
        return JSONResponse(pending())

    @router.delete("/faults")
    async def clear_faults() -> Response:
        state.faults.clear()
        return Response(status_code=204)

    @router.post("/keys/rotate")
    async def rotate_keys() -> JSONResponse:
        previous = state.keys.signing_key.kid
        current = state.keys.rotate().kid
        return JSONResponse(
            {
                "kid": current,
                "previous_kid": previous,
                "published_kids": [k.kid for k in state.keys.published()],
            }
        )

    @router.post("/citizens/{citizen_id}/lock")
    async def lock_citizen(citizen_id: str) -> JSONResponse:
        citizen = state.citizens.get(citizen_id)
        if citizen is None:
            return JSONResponse({"error": "unknown citizen"}, status_code=404)
        locked = citizen.model_copy(update={"locked": True})
        state.citizens[citizen_id] = locked
        revoked = state.revoke_tokens_for(citizen_id)
        notified = await _send_backchannel_logouts(state, locked)
        return JSONResponse(
            {
                "citizen_id": citizen_id,
                "locked": True,
                "revoked_access_tokens": revoked,
                "backchannel_logout": notified,
            }
        )

    @router.post("/citizens/{citizen_id}/unlock")
    async def unlock_citizen(citizen_id: str) -> JSONResponse:
        citizen = state.citizens.get(citizen_id)
        if citizen is None:
            return JSONResponse({"error": "unknown citizen"}, status_code=404)
        state.citizens[citizen_id] = citizen.model_copy(update={"locked": False})
        return JSONResponse({"citizen_id": citizen_id, "locked": False})

    return router


async def _send_backchannel_logouts(state: SimState, citizen: Citizen) -> list[dict[str, Any]]:
    """Tell every client that got tokens for this citizen (OIDC Back-Channel Logout 1.0)."""
    results: list[dict[str, Any]] = []
    client_ids = sorted(state.clients_by_citizen.pop(citizen.citizen_id, set()))
    async with httpx.AsyncClient(transport=state.outbound_transport, timeout=5.0) as http:
        for client_id in client_ids:
            client = state.clients.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            result: dict[str, Any] = {"client_id": client_id, "uri": client.backchannel_logout_uri}
            try:
                response = await http.post(
                    client.backchannel_logout_uri,
                    data={"logout_token": issue_logout_token(state, client_id, citizen)},
                )
                result["status"] = response.status_code
            except httpx.HTTPError as error:
                result["error"] = type(error).__name__
            results.append(result)
    return results
