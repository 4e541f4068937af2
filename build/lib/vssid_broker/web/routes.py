"""Browser pages: login, the VNeID redirect and callback, the account page, logout."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from vssid_broker import login
from vssid_broker.accounts import service as accounts
from vssid_broker.audit import service as audit
from vssid_broker.deps import Ctx, RequestId
from vssid_broker.errors import Forbidden
from vssid_broker.sessions import browser as browser_sessions

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)

LOGIN_BINDING_COOKIE = "vssid_login"
CALLBACK_PATH = "/auth/vneid/callback"


def safe_return_to(value: str | None) -> str:
    """Only local paths: an open redirect after login is a phishing tool (RFC 9700 §4.11)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/account"


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, ctx: Ctx) -> Response:
    async with ctx.db() as session:
        signed_in = await browser_sessions.find(
            session, request.cookies.get(browser_sessions.SESSION_COOKIE), ctx.clock()
        )
    return templates.TemplateResponse(request, "index.html", {"signed_in": signed_in is not None})


@router.get("/auth/vneid/login")
async def vneid_login(ctx: Ctx, return_to: Annotated[str | None, Query()] = None) -> Response:
    binding = secrets.token_urlsafe(32)
    started = await login.start(
        ctx,
        channel="browser",
        redirect_uri=ctx.settings.vneid_redirect_uri,
        return_to=safe_return_to(return_to),
        browser_binding=binding,
    )
    response = RedirectResponse(started.authorization_url, status_code=302)
    # Binds the callback to this browser (login CSRF); Lax so it rides VNeID's top-level redirect.
    response.set_cookie(
        LOGIN_BINDING_COOKIE,
        binding,
        max_age=started.expires_in,
        path=CALLBACK_PATH,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
    )
    return response


@router.get(CALLBACK_PATH)
async def vneid_callback(
    request: Request,
    ctx: Ctx,
    request_id: RequestId,
    state: str | None = None,
    code: str | None = None,
    iss: str | None = None,
    error: str | None = None,
) -> Response:
    result = await login.finish_browser(
        ctx,
        login.CallbackParams(state=state, code=code, iss=iss, error=error),
        browser_binding=request.cookies.get(LOGIN_BINDING_COOKIE),
        request_id=request_id,
    )
    target = safe_return_to(result.return_to)
    if result.newly_linked:
        target += ("&" if "?" in target else "?") + "linked=1"
    response = RedirectResponse(target, status_code=302)
    assert result.browser_session is not None
    response.set_cookie(
        browser_sessions.SESSION_COOKIE,
        result.browser_session,
        max_age=ctx.settings.browser_session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_BINDING_COOKIE, path=CALLBACK_PATH)
    return response


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, ctx: Ctx, linked: bool = False) -> Response:
    now = ctx.clock()
    async with ctx.db() as session:
        current = await browser_sessions.find(
            session, request.cookies.get(browser_sessions.SESSION_COOKIE), now
        )
        if current is None:
            return RedirectResponse("/", status_code=302)
        account = await accounts.get_account(session, current.account_id)
    return templates.TemplateResponse(
        request,
        "account.html",
        {
            "account": account,
            "summary": accounts.summarise(account.periods, now.date()),
            "card": account.health_card,
            "linked_now": linked,
        },
    )


@router.post("/auth/logout")
async def logout(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    # SameSite=Lax keeps the cookie off cross-site POSTs; a foreign Origin is refused outright.
    origin = request.headers.get("origin")
    if origin is not None and origin != ctx.settings.public_base_url:
        raise Forbidden("logout from a foreign origin")
    now = ctx.clock()
    async with ctx.db.begin() as session:
        account_id = await browser_sessions.end(
            session, request.cookies.get(browser_sessions.SESSION_COOKIE), now
        )
        if account_id is not None:
            audit.record(
                session,
                event_type="logout",
                outcome="succeeded",
                now=now,
                account_id=account_id,
                request_id=request_id,
                channel="browser",
            )
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(browser_sessions.SESSION_COOKIE)
    return response
