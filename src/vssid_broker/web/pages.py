"""Browser pages: login, the VNeID redirect and callback, the account page, logout."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vssid_broker import personal_data
from vssid_broker.accounts import service as accounts
from vssid_broker.audit import service as audit
from vssid_broker.context import BrokerContext
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.errors.tokens import FrontChannelLogoutRejected
from vssid_broker.login import flow as login
from vssid_broker.login import logout as logout_stories
from vssid_broker.opaque_tokens import new_token
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.models import BrowserSession
from vssid_broker.web.deps import Ctx, RequestId
from vssid_broker.web.rendering import templates

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

LOGIN_BINDING_COOKIE = "vssid_login"
CALLBACK_PATH = "/auth/vneid/callback"
FRONTCHANNEL_LOGOUT_PATH = "/auth/vneid/frontchannel-logout"
FRONTCHANNEL_LOGOUT_PAGE = (
    '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
    "<title>VssID: đã đăng xuất</title></head><body></body></html>"
)


def safe_return_to(value: str | None) -> str:
    """Only local paths: an open redirect after login is a phishing tool (RFC 9700 §4.11)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
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


@router.get("/auth/vneid/login")
async def vneid_login(ctx: Ctx, return_to: Annotated[str | None, Query()] = None) -> Response:
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
        links, consents = await personal_data.links_and_consents(session, current.account_id)
    privacy = {"links": links, "consents": consents}  # templates/_account_privacy.html
    return templates.TemplateResponse(
        request,
        "account.html",
        {
            "account": account,
            "summary": accounts.summarise(account.periods, now.date()),
            "card": account.health_card,
            "linked_now": linked,
            "csrf_token": current.csrf_token,
            "privacy": privacy,
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
    """OIDC RP-Initiated Logout 1.0 §2: after our session, end the one at VNeID when it offers
    it. GET by default (the hint in the query, as §2 defines it, served by every provider; a
    cross-site POST would not carry VNeID's SameSite=Lax cookie), or an auto-submitted POST
    form where VNeID wants that (`VSSID_VNEID_END_SESSION_METHOD`)."""
    if ended is None or ended.vneid_id_token_sealed is None:
        return RedirectResponse("/", status_code=303)
    metadata = await ctx.provider.metadata()
    if metadata.end_session_endpoint is None:
        return RedirectResponse("/", status_code=303)
    fields = {
        "id_token_hint": ctx.keys.unseal(ended.vneid_id_token_sealed),
        "client_id": ctx.settings.vneid_client_id,
        "post_logout_redirect_uri": ctx.settings.post_logout_redirect_uri,
        # §2: carried back unchanged to the post-logout redirect; the front page ignores it,
        # so it only has to be unguessable, never stored.
        "state": new_token(),
    }
    if ctx.settings.vneid_end_session_method == "GET":
        target = add_params_to_uri(metadata.end_session_endpoint, list(fields.items()))
        response: Response = RedirectResponse(target, status_code=303)
    else:
        response = templates.TemplateResponse(
            request,
            "vneid_logout.html",
            {"action": metadata.end_session_endpoint, "fields": fields},
        )
    # The URL and the form carry an ID token: never cached, never sent on as a Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get(FRONTCHANNEL_LOGOUT_PATH)
async def vneid_frontchannel_logout(
    ctx: Ctx,
    request_id: RequestId,
    iss: str | None = None,
    sid: str | None = None,
) -> Response:
    """OpenID Connect Front-Channel Logout 1.0: VNeID's logged-out page loads this in an
    iframe with its `iss` and the `sid` that ended; the browser sessions it started end."""
    status = 200
    try:
        ended = await logout_stories.vneid_frontchannel_logout(ctx, iss, sid, request_id)
        log.info("front-channel logout: %s", ended or "no open session")
    except FrontChannelLogoutRejected as refusal:
        log.info("front-channel logout refused: %s", refusal.detail)
        status = 400
    metadata = await ctx.provider.metadata()
    issuer = urlsplit(metadata.issuer)
    return HTMLResponse(
        FRONTCHANNEL_LOGOUT_PAGE,
        status_code=status,
        headers={
            # §2: the answer must not be cached, and VNeID (only) may frame it.
            "Cache-Control": "no-cache, no-store",
            "Pragma": "no-cache",
            "Content-Security-Policy": f"frame-ancestors {issuer.scheme}://{issuer.netloc}",
        },
    )
