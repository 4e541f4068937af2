"""Browser pages: login, the VNeID redirect and callback, the account page, logout."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from vssid_broker import personal_data
from vssid_broker.accounts import health_card
from vssid_broker.accounts import service as accounts
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.context import BrokerContext
from vssid_broker.errors import DomainError, NotFound, Unauthorized
from vssid_broker.errors.login import CsrfRefused, LoginRefused
from vssid_broker.errors.tokens import FrontChannelLogoutRejected
from vssid_broker.federation.vneid_dialect import code_from_raw_query
from vssid_broker.linking import consent
from vssid_broker.login import flow as login
from vssid_broker.login import logout as logout_stories
from vssid_broker.opaque_tokens import new_token
from vssid_broker.sealing import KeyUnusable, SealedPlace, SealedValueRefused
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.web import refusals
from vssid_broker.web.deps import Ctx, RequestId, current_browser_session, require_same_origin
from vssid_broker.web.rate_limiting import LimitLoginStart
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
SIGNED_OUT_PATH = "/signed-out"
VNEID_LOGOUT_PATH = "/auth/logout/vneid"
VNEID_LOGOUT_COOKIE = "vssid_vneid_logout"
VNEID_LOGOUT_HINT = SealedPlace("cookie", VNEID_LOGOUT_COOKIE)
"""The ID token on its way to VNeID's logout, sealed again for the cookie that carries it: the
value stored with the session opens only for that session's row."""
LINKED_NOTICE_COOKIE = "vssid_linked_notice"
"""Set by the callback that linked the identity, read and cleared by the first account page:
the "just linked" notice shows once, whatever the URL."""
ACCOUNT_PATH = "/account"
ACCOUNT_PAGE_SIZE = 10
"""Rows of the history and of the benefits per page of the account page."""


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


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, ctx: Ctx) -> Response:
    signed_in = await current_browser_session(request, ctx)
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "signed_in": signed_in is not None,
            "app_demo": ctx.settings.demo_app_redirect_uri is not None,
        },
    )


@router.get("/auth/vneid/login", dependencies=[LimitLoginStart])
async def vneid_login(
    ctx: Ctx,
    return_to: Annotated[str | None, Query(max_length=500)] = None,
    max_age: Annotated[int | None, Query(ge=0, le=86400)] = None,
) -> Response:
    """`max_age`: a step-up (`/account/requests`): VNeID must have seen the person that
    recently, or ask again."""
    binding = new_token()
    started = await login.start(
        ctx,
        channel="browser",
        redirect_uri=ctx.settings.vneid_redirect_uri,
        return_to=safe_return_to(return_to),
        browser_binding=binding,
        max_age=max_age,
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
    encrypt_key = None
    if ctx.settings.vneid_protocol == "vneid-encrypted":
        # VNeID's dialect sends base64 codes with "+" unescaped: read them from the raw query.
        code, encrypt_key = code_from_raw_query(request.url.query)
    try:
        result = await login.finish_browser(
            ctx,
            login.CallbackParams(
                state=state, code=code, iss=iss, error=error, encrypt_key=encrypt_key
            ),
            browser_binding=request.cookies.get(LOGIN_BINDING_COOKIE),
            request_id=request_id,
            client=login.ClientInfo(
                user_agent=request.headers.get("user-agent"),
                # OWASP session management: a login always gets a new session id; one the
                # browser already held (perhaps planted by someone else: session fixation) ends.
                replaces_browser_session=request.cookies.get(browser_sessions.SESSION_COOKIE),
            ),
        )
    except LoginRefused as refusal:
        # 303 to a page of its own: reload and Back show the same reason, not "expired".
        reference = refusals.seal_outcome(ctx.keys, refusal, request_id, ctx.clock())
        refused = RedirectResponse(
            f"{refusals.OUTCOME_PATH}?{urlencode({'ref': reference})}", status_code=303
        )
        refused.delete_cookie(LOGIN_BINDING_COOKIE, path=CALLBACK_PATH)
        return refused
    response = RedirectResponse(safe_return_to(result.return_to), status_code=302)
    assert result.browser_session is not None
    response.set_cookie(
        browser_sessions.SESSION_COOKIE,
        result.browser_session,
        max_age=ctx.settings.browser_session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.secure_cookies,
    )
    if result.newly_linked or result.confirmed_by_staff:
        response.set_cookie(
            LINKED_NOTICE_COOKIE,
            "review" if result.confirmed_by_staff else "1",
            max_age=300,
            path=ACCOUNT_PATH,
            httponly=True,
            samesite="lax",
            secure=ctx.settings.secure_cookies,
        )
    response.delete_cookie(LOGIN_BINDING_COOKIE, path=CALLBACK_PATH)
    return response


@router.get(refusals.OUTCOME_PATH, response_class=HTMLResponse)
async def login_outcome(
    request: Request, ctx: Ctx, request_id: RequestId, ref: str | None = None
) -> Response:
    """Where a refused browser login lands: one page per outcome (`web/refusals.py`)."""
    outcome = refusals.open_outcome(ctx.keys, ref, ctx.clock())
    expired = outcome is None
    if outcome is None:
        outcome = refusals.Outcome("login_outcome_expired", request_id, 400)
    page = refusals.page_for(outcome.code)
    return templates.TemplateResponse(
        request,
        page.template,
        {
            "page": page,
            "outcome": outcome,
            "expired": expired,
            "support_phone": refusals.SUPPORT_PHONE,
            "support_phone_uri": refusals.SUPPORT_PHONE_URI,
        },
        status_code=outcome.status,
    )


@router.get(ACCOUNT_PATH, response_class=HTMLResponse)
async def account_page(
    request: Request,
    ctx: Ctx,
    periods_from: Annotated[int, Query(ge=0, le=100_000)] = 0,
    benefits_from: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    today = ctx.clock().date()
    current = await current_browser_session(request, ctx)
    if current is None:
        return RedirectResponse("/", status_code=302)
    async with ctx.autocommit() as session:
        account = await accounts.get_account(session, current.account_id)
        links, consents = await personal_data.links_and_consents(session, current.account_id)
        benefits = await accounts.benefits_page(
            session, account.id, offset=benefits_from, limit=ACCOUNT_PAGE_SIZE
        )
    periods = accounts.periods_page_of(account, offset=periods_from, limit=ACCOUNT_PAGE_SIZE)
    try:
        health_card.usable_card(account, today)
        card_refusal = None
    except DomainError as refusal:  # absent or expired: said in words, not a broken image
        card_refusal = refusal.message
    page = templates.TemplateResponse(
        request,
        "account.html",
        {
            "account": account,
            "summary": accounts.summarise(account.periods, today),
            "contributions": accounts.contributions(account.periods, today),
            "periods": periods,
            "benefits": benefits,
            "benefit_labels": accounts.BENEFIT_LABELS,
            "card": account.health_card,
            "card_face": (
                health_card.face_lines(account, account.health_card) if account.health_card else []
            ),
            "card_refusal": card_refusal,
            # "1": linked just now; "review": staff confirmed the link (issue_session).
            "linked_now": request.cookies.get(LINKED_NOTICE_COOKIE) == "1",
            "confirmed_by_staff": request.cookies.get(LINKED_NOTICE_COOKIE) == "review",
            "csrf_token": current.csrf_token,
            # _account_privacy.html, and account/notice_update.html when the notice changed
            "privacy": {
                "links": links,
                "consents": consents,
                "outdated": consent.given_under_an_older_notice(
                    consents, ctx.settings.privacy_notice_version
                ),
                "notice_version": ctx.settings.privacy_notice_version,
            },
        },
    )
    page.delete_cookie(LINKED_NOTICE_COOKIE, path=ACCOUNT_PATH)
    return page


@router.get(f"{ACCOUNT_PATH}/health-card", response_class=HTMLResponse)
async def account_health_card_view(request: Request, ctx: Ctx) -> Response:
    """The card over the whole screen, to hold up to a clinic's counter scanner: the QR code
    as wide as the screen, then the card's face."""
    current = await current_browser_session(request, ctx)
    if current is None:
        return RedirectResponse("/", status_code=302)
    async with ctx.autocommit() as session:
        account = await accounts.get_account(session, current.account_id)
    context: dict[str, object] = {"account": account, "card_refusal": None}
    try:
        card = health_card.usable_card(account, ctx.clock().date())
    except DomainError as refusal:
        context["card_refusal"] = refusal.message
    else:
        context |= {
            "card": card,
            "card_face": health_card.face_lines(account, card),
            # segno's own SVG of text we wrote: nothing from outside to escape.
            "qr_svg": Markup(health_card.qr_svg_for_screen(account, card)),  # noqa: S704
        }
    return templates.TemplateResponse(request, "account/health_card_view.html", context)


@router.get(f"{ACCOUNT_PATH}/health-card.png")
async def account_health_card(request: Request, ctx: Ctx) -> Response:
    """The same image as the app's `/api/v1/me/health-card.png`, for the signed-in browser."""
    current = await current_browser_session(request, ctx)
    if current is None:
        raise Unauthorized("no browser session for the card image")
    async with ctx.autocommit() as session:
        account = await accounts.get_account(session, current.account_id)
    card = health_card.usable_card(account, ctx.clock().date())
    png = await run_in_threadpool(health_card.render_png, account, card)  # CPU: off the loop
    return Response(png, media_type="image/png")


@router.post("/auth/logout")
async def logout(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    # SameSite=Lax keeps the cookie off cross-site POSTs; the Origin and the session's own
    # CSRF token make sure the person pressed our button.
    require_same_origin(request, ctx)
    form = await request.form()
    submitted = form.get("csrf_token")
    current = await current_browser_session(request, ctx)
    if current is None:  # already ended (timeout, revocation): only the cookie is left to clear
        gone = RedirectResponse(SIGNED_OUT_PATH, status_code=303)
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
                event_type=AuditEventType.LOGOUT,
                outcome="succeeded",
                now=now,
                account_id=ended.account_id,
                request_id=request_id,
                channel="browser",
            )
    # Answered with 303 whatever follows: the POST never stays in the history for Back to
    # re-send. The VNeID leg, if any, goes on by GET, or for POST on a GET page of its own.
    response: Response = RedirectResponse(SIGNED_OUT_PATH, status_code=303)
    if ended is None or ended.vneid_id_token_sealed is None:
        pass
    elif (await ctx.provider.metadata()).end_session_endpoint is None:
        pass  # §2.1 makes the endpoint optional: the logout ends here
    elif ctx.settings.vneid_end_session_method == "GET":
        response = await _vneid_logout_by_get(ctx)
    elif (hint := _logout_hint(ctx, ended)) is not None:
        response = RedirectResponse(VNEID_LOGOUT_PATH, status_code=303)
        # Sealed for the cookie alone; a minute is enough to follow the redirect.
        response.set_cookie(
            VNEID_LOGOUT_COOKIE,
            hint,
            max_age=60,
            path=VNEID_LOGOUT_PATH,
            httponly=True,
            samesite="lax",
            secure=ctx.settings.secure_cookies,
        )
    response.delete_cookie(browser_sessions.SESSION_COOKIE)
    return response


def _logout_hint(ctx: BrokerContext, ended: browser_sessions.EndedBrowserSession) -> str | None:
    """The session's ID token, sealed again for the logout cookie; None (no VNeID leg, the
    broker's own logout is done) when the stored value does not open for the session."""
    assert ended.vneid_id_token_sealed is not None  # checked by the caller
    try:
        id_token = ctx.keys.unseal(ended.vneid_id_token_sealed, ended.vneid_id_token_binding)
    except (SealedValueRefused, KeyUnusable) as refused:
        log.error("logout without the VNeID leg: %s", refused)
        return None
    return ctx.keys.seal(id_token, VNEID_LOGOUT_HINT.of())


def _end_session_fields(ctx: BrokerContext, id_token: str | None) -> dict[str, str]:
    """RP-Initiated Logout §2's parameters; the ID token as `id_token_hint` only in a form
    body, never in a URL (it carries the citizen ID, name and birth date, and URLs stay in
    proxies' logs and the browser's history)."""
    hint = {"id_token_hint": id_token} if id_token is not None else {}
    return hint | {
        "client_id": ctx.settings.vneid_client_id,
        "post_logout_redirect_uri": ctx.settings.post_logout_redirect_uri,
        # §2: carried back unchanged to the post-logout redirect; the signed-out page ignores
        # it, so it only has to be unguessable, never stored.
        "state": new_token(),
    }


def _no_store_no_referrer(response: Response) -> Response:
    # The form carries an ID token: never cached, never sent on as a Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _vneid_logout_by_get(ctx: BrokerContext) -> Response:
    """RP-Initiated Logout §2 by GET, for a provider that serves only GET
    (`VSSID_VNEID_END_SESSION_METHOD=GET`): `client_id` and no hint, as §2 allows, since the
    ID token must not travel in a URL. VNeID then knows the person by its own cookie (a
    top-level GET carries its SameSite=Lax cookie) and may ask them to confirm."""
    endpoint = (await ctx.provider.metadata()).end_session_endpoint
    assert endpoint is not None  # checked by the caller
    target = add_params_to_uri(endpoint, list(_end_session_fields(ctx, None).items()))
    return _no_store_no_referrer(RedirectResponse(target, status_code=303))


@router.get(VNEID_LOGOUT_PATH, response_class=HTMLResponse)
async def vneid_logout(request: Request, ctx: Ctx) -> Response:
    """RP-Initiated Logout by POST, the default (`VSSID_VNEID_END_SESSION_METHOD=POST`): the
    `id_token_hint` goes in a form body, never in a URL. A GET page of our own auto-submits
    the form, so Back never re-sends our logout. The hint reaches it in a short-lived cookie,
    sealed, and is used once."""
    id_token = _unsealed(ctx, request.cookies.get(VNEID_LOGOUT_COOKIE))
    metadata = await ctx.provider.metadata() if id_token else None
    if id_token is None or metadata is None or metadata.end_session_endpoint is None:
        response: Response = RedirectResponse(SIGNED_OUT_PATH, status_code=303)
    else:
        response = _no_store_no_referrer(
            templates.TemplateResponse(
                request,
                "vneid_logout.html",
                {
                    "action": metadata.end_session_endpoint,
                    "fields": _end_session_fields(ctx, id_token),
                },
            )
        )
    response.delete_cookie(VNEID_LOGOUT_COOKIE, path=VNEID_LOGOUT_PATH)
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


def _unsealed(ctx: BrokerContext, sealed: str | None) -> str | None:
    try:
        return ctx.keys.unseal(sealed, VNEID_LOGOUT_HINT.of()) if sealed else None
    except Exception:  # altered or from a rotated key: just no VNeID leg
        return None


@router.get(SIGNED_OUT_PATH, response_class=HTMLResponse)
async def signed_out(request: Request) -> Response:
    """Where every logout ends, reached by a GET (303 or VNeID's redirect): Back never
    re-sends the logout form."""
    return templates.TemplateResponse(request, "signed_out.html")


@router.get("/demo/app", response_class=HTMLResponse)
@router.get("/demo/app/callback", response_class=HTMLResponse)
async def app_flow_demo(request: Request, ctx: Ctx) -> Response:
    """The demo page that plays the VssID app against the mobile API (`web/static/app-demo.js`):
    its own PKCE pair and DPoP key made with WebCrypto, VNeID and back on the app's redirect,
    then the app's screens. Served only where `Settings.demo_app_redirect_uri` is in force."""
    redirect_uri = ctx.settings.demo_app_redirect_uri
    if redirect_uri is None:
        raise NotFound("the app-flow demo page is off outside loopback")
    return templates.TemplateResponse(request, "app_demo.html", {"redirect_uri": redirect_uri})
