"""Browser pages: login, the VNeID redirect and callback, the account page, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vssid_broker.accounts import service as accounts
from vssid_broker.audit import service as audit
from vssid_broker.context import BrokerContext
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.login import flow as login
from vssid_broker.opaque_tokens import new_token
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.models import BrowserSession
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.rate_limiting import LimitLoginStart
from vssid_broker.web.rendering import templates

router = APIRouter(include_in_schema=False)

LOGIN_BINDING_COOKIE = "vssid_login"
CALLBACK_PATH = "/auth/vneid/callback"


def safe_return_to(value: str | None) -> str:
    """Only local paths: an open redirect after login is a phishing tool (RFC 9700 §4.11)."""
    if (
        value
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and value.isprintable()
    ):
        return value
    return "/account"


def require_same_origin(request: Request, ctx: BrokerContext) -> None:
    """OWASP CSRF cheat sheet, defence in depth: a foreign Origin is refused outright."""
    origin = request.headers.get("origin")
    if origin is not None and origin != ctx.settings.public_base_url:
        raise CsrfRefused("state-changing request from a foreign origin")


async def current_browser_session(request: Request, ctx: BrokerContext) -> BrowserSession | None:
    """The live session behind the cookie (idle and absolute timeouts applied), touched."""
    async with ctx.db.begin() as session:
        return await browser_sessions.find(
            session,
            request.cookies.get(browser_sessions.SESSION_COOKIE),
            ctx.clock(),
            idle_seconds=ctx.settings.browser_session_idle_seconds,
        )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, ctx: Ctx) -> Response:
    signed_in = await current_browser_session(request, ctx)
    return templates.TemplateResponse(request, "index.html", {"signed_in": signed_in is not None})


@router.get("/auth/vneid/login", dependencies=[LimitLoginStart])
async def vneid_login(
    ctx: Ctx, return_to: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    binding = new_token()
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
        client=login.ClientInfo(
            user_agent=request.headers.get("user-agent"),
            # OWASP session management: a login always gets a new session id; one the browser
            # already held (perhaps planted by someone else: session fixation) ends.
            replaces_browser_session=request.cookies.get(browser_sessions.SESSION_COOKIE),
        ),
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
    current = await current_browser_session(request, ctx)
    if current is None:
        return RedirectResponse("/", status_code=302)
    async with ctx.autocommit() as session:
        account = await accounts.get_account(session, current.account_id)
    return templates.TemplateResponse(
        request,
        "account.html",
        {
            "account": account,
            "summary": accounts.summarise(account.periods, now.date()),
            "card": account.health_card,
            "linked_now": linked,
            "csrf_token": current.csrf_token,
        },
    )


@router.post("/auth/logout")
async def logout(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    # SameSite=Lax keeps the cookie off cross-site POSTs; the Origin and the session's own
    # CSRF token make sure the person pressed our button.
    require_same_origin(request, ctx)
    form = await request.form()
    submitted = form.get("csrf_token")
    current = await current_browser_session(request, ctx)
    if current is None:  # already ended (timeout, revocation): only the cookie is left to clear
        gone = RedirectResponse("/", status_code=303)
        gone.delete_cookie(browser_sessions.SESSION_COOKIE)
        return gone
    if not browser_sessions.csrf_token_matches(
        current, submitted if isinstance(submitted, str) else None
    ):
        raise CsrfRefused("logout without this session's CSRF token")
    now = ctx.clock()
    async with ctx.db.begin() as session:
        ended = await browser_sessions.end(
            session, request.cookies.get(browser_sessions.SESSION_COOKIE), now
        )
        if ended is not None:
            audit.record(
                session,
                event_type="logout",
                outcome="succeeded",
                now=now,
                account_id=ended.account_id,
                request_id=request_id,
                channel="browser",
            )
    response = await _vneid_logout(request, ctx, ended)
    response.delete_cookie(browser_sessions.SESSION_COOKIE)
    return response


async def _vneid_logout(
    request: Request, ctx: BrokerContext, ended: BrowserSession | None
) -> Response:
    """OIDC RP-Initiated Logout 1.0: after our session, end the one at VNeID when it offers
    it. The hint travels in a POST form (§2 allows it), so an ID token never sits in a URL."""
    if ended is None or ended.vneid_id_token_sealed is None:
        return RedirectResponse("/", status_code=303)
    metadata = await ctx.provider.metadata()
    if metadata.end_session_endpoint is None:
        return RedirectResponse("/", status_code=303)
    return templates.TemplateResponse(
        request,
        "vneid_logout.html",
        {
            "action": metadata.end_session_endpoint,
            "fields": {
                "id_token_hint": ctx.keys.unseal(ended.vneid_id_token_sealed),
                "client_id": ctx.settings.vneid_client_id,
                "post_logout_redirect_uri": ctx.settings.post_logout_redirect_uri,
            },
        },
    )
