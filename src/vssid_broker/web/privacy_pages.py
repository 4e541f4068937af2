"""The person's privacy in the browser: the privacy notice, the account page's section on
what is linked (with self-service unlink), and the download of everything held about them.

Apart from `pages.py` so the account page's other parts can change without touching these.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from vssid_broker import personal_data
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.linking import consent, unlinking
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.models import BrowserSession
from vssid_broker.web.deps import Ctx, RequestId, current_browser_session, require_same_origin
from vssid_broker.web.rendering import templates

router = APIRouter(include_in_schema=False)


@router.get("/privacy", response_class=HTMLResponse)
async def privacy_notice(request: Request, ctx: Ctx) -> Response:
    return templates.TemplateResponse(
        request, "privacy.html", {"notice_version": ctx.settings.privacy_notice_version}
    )


@router.get("/account/export")
async def download_export(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    current = await current_browser_session(request, ctx)
    if current is None:
        return RedirectResponse("/", status_code=302)
    now = ctx.clock()
    async with ctx.db.begin() as session:
        held = await personal_data.export(
            session,
            ctx.refresh_tokens,
            current.account_id,
            now=now,
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
            request_id=request_id,
        )
    filename = f"vssid-du-lieu-ca-nhan-{now:%Y%m%d}.json"
    return Response(
        held.model_dump_json(indent=2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _signed_in_form(
    request: Request, ctx: Ctx, what: str
) -> tuple[FormData, BrowserSession | None]:
    """A form of the account page: from this site, and (signed in) with the session's token."""
    require_same_origin(request, ctx)
    form = await request.form()
    current = await current_browser_session(request, ctx)
    if current is not None:
        submitted = form.get("csrf_token")
        if not browser_sessions.csrf_token_matches(
            current, submitted if isinstance(submitted, str) else None
        ):
            raise CsrfRefused(f"{what} without this session's CSRF token")
    return form, current


@router.post("/account/unlink")
async def unlink_my_identity(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    """The person removes their VNeID link: every session of the account ends (this one too),
    the consent is withdrawn, and the next VNeID login links again only by the rules."""
    form, current = await _signed_in_form(request, ctx, "unlink")
    if current is None:
        return RedirectResponse("/", status_code=303)
    link_id = form.get("link_id")
    async with ctx.db.begin() as session:
        await unlinking.unlink(
            session,
            account_id=current.account_id,
            link_id=int(link_id) if isinstance(link_id, str) and link_id.isdigit() else -1,
            actor="person",
            reason="unlinked by the person on the account page",
            now=ctx.clock(),
            request_id=request_id,
            refresh=ctx.refresh_tokens,
        )
    done = RedirectResponse("/account/unlinked", status_code=303)
    done.delete_cookie(browser_sessions.SESSION_COOKIE)
    return done


@router.post("/account/consent")
async def agree_to_the_current_notice(
    request: Request, ctx: Ctx, request_id: RequestId
) -> Response:
    """The person agrees to the privacy notice as it reads today, after it changed since they
    linked (the account page asks them: `account/notice_update.html`)."""
    _, current = await _signed_in_form(request, ctx, "consent")
    if current is None:
        return RedirectResponse("/", status_code=303)
    async with ctx.db.begin() as session:
        await consent.renew(
            session,
            account_id=current.account_id,
            notice_version=ctx.settings.privacy_notice_version,
            now=ctx.clock(),
            request_id=request_id,
        )
    return RedirectResponse("/account#privacy", status_code=303)


@router.get("/account/unlinked", response_class=HTMLResponse)
async def unlinked(request: Request) -> Response:
    return templates.TemplateResponse(request, "unlinked.html", {})
