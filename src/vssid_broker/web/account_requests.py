"""The person's requests in the browser: `/account/requests` (the list, one form per kind, one
request with its history). Submitting needs a fresh VNeID sign-in, as in the app: a stale
session's form is kept server-side (a draft, keyed by a random cookie, never in a URL), the
browser goes through VNeID with `max_age`, and comes back to the same form, filled in."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from vssid_broker.context import BrokerContext
from vssid_broker.errors import DomainError
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.errors.requests import RequestInvalid, StepUpRequired
from vssid_broker.login.step_up import require_recent_vneid_sign_in
from vssid_broker.requests import service
from vssid_broker.requests.facilities import facilities_of, province_of_card
from vssid_broker.requests.labels import KIND_LABELS, LABELS
from vssid_broker.requests.models import RequestKind
from vssid_broker.requests.schemas import RequestIn
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.models import BrowserSession
from vssid_broker.web.deps import Ctx, RequestId, current_browser_session, require_same_origin
from vssid_broker.web.rendering import templates

router = APIRouter(include_in_schema=False)

BASE = "/account/requests"
DRAFT_COOKIE = "vssid_request_draft"
FORM_FIELDS = ("kind", "reason", "delivery_address", "facility_code", "new_phone")


def _sign_in(return_to: str, max_age: int | None = None) -> RedirectResponse:
    query = {"return_to": return_to} | ({"max_age": str(max_age)} if max_age is not None else {})
    return RedirectResponse(f"/auth/vneid/login?{urlencode(query)}", status_code=303)


def _checked(current: BrowserSession, form: FormData) -> None:
    token = form.get("csrf_token")
    if not browser_sessions.csrf_token_matches(current, token if isinstance(token, str) else None):
        raise CsrfRefused("request form without this session's CSRF token")


@router.get(BASE, response_class=HTMLResponse)
async def request_list(request: Request, ctx: Ctx) -> Response:
    current = await current_browser_session(request, ctx)
    if current is None:
        return _sign_in(BASE)
    async with ctx.autocommit() as session:
        rows = await service.list_own(session, current.account_id)
    return templates.TemplateResponse(
        request, "account/requests/list.html", {"rows": rows, "labels": LABELS}
    )


@router.get(BASE + "/new", response_class=HTMLResponse)
async def request_form(request: Request, ctx: Ctx, kind: str = "health_card_reissue") -> Response:
    current = await current_browser_session(request, ctx)
    if current is None:
        return _sign_in(f"{BASE}/new?{urlencode({'kind': kind})}")
    async with ctx.db.begin() as session:
        draft = await service.take_draft(
            session, current.account_id, request.cookies.get(DRAFT_COOKIE), now=ctx.clock()
        )
    values = draft or {"kind": kind}
    page = await _form_page(request, ctx, current, values, resumed=draft is not None)
    page.delete_cookie(DRAFT_COOKIE, path=BASE)
    return page


async def _form_page(
    request: Request,
    ctx: BrokerContext,
    current: BrowserSession,
    values: dict[str, str],
    *,
    error: DomainError | None = None,
    resumed: bool = False,
) -> Response:
    kind = values.get("kind", "")
    if kind not in KIND_LABELS:
        kind = RequestKind.HEALTH_CARD_REISSUE
    async with ctx.autocommit() as session:
        card = await session_card(session, current.account_id)
    facilities = facilities_of(province_of_card(card.card_code, card.facility_code)) if card else []
    opens_on, closes_on, window_open = service.window_today(ctx.clock(), ctx.settings)
    return templates.TemplateResponse(
        request,
        "account/requests/form.html",
        {
            "kind": kind,
            "values": values,
            "labels": LABELS,
            "card": card,
            "facilities": facilities,
            "window": {"opens_on": opens_on, "closes_on": closes_on, "open": window_open},
            "csrf_token": current.csrf_token,
            "error": error,
            "resumed": resumed,
        },
        status_code=error.status if error else 200,
    )


async def session_card(session: Any, account_id: int) -> Any:
    try:
        return await service.card_of(session, account_id)
    except DomainError:
        return None


@router.post(BASE, response_class=HTMLResponse)
async def submit_request(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    require_same_origin(request, ctx)
    current = await current_browser_session(request, ctx)
    if current is None:
        return _sign_in(f"{BASE}/new")
    form = await request.form()
    _checked(current, form)
    values = {name: str(form.get(name) or "").strip() for name in FORM_FIELDS}
    now = ctx.clock()
    try:
        require_recent_vneid_sign_in(
            acr=current.acr, auth_time=current.auth_time, now=now, settings=ctx.settings
        )
    except StepUpRequired as challenge:
        # Kept server-side; the browser signs in again at VNeID and comes back to the form.
        async with ctx.db.begin() as session:
            key = service.keep_draft(session, current.account_id, values, now=now)
        away = _sign_in(f"{BASE}/new?{urlencode({'kind': values['kind']})}", challenge.max_age)
        away.set_cookie(
            DRAFT_COOKIE,
            key,
            max_age=service.DRAFT_TTL_SECONDS,
            path=BASE,
            httponly=True,
            samesite="lax",
            secure=ctx.settings.secure_cookies,
        )
        return away
    try:
        body = RequestIn.model_validate({name: value or None for name, value in values.items()})
    except ValidationError:
        invalid = RequestInvalid("a form field is not valid")
        return await _form_page(request, ctx, current, values, error=invalid)
    try:
        async with ctx.db.begin() as session:
            row = await service.submit(
                session,
                body,
                service.Requester(current.account_id, request_id),
                now=now,
                settings=ctx.settings,
                sms=ctx.sms,
                phone_code_key=ctx.phone_code_key,
            )
            reference = row.reference
    except DomainError as refused:
        return await _form_page(request, ctx, current, values, error=refused)
    return RedirectResponse(f"{BASE}/{reference}", status_code=303)


@router.get(BASE + "/{reference}", response_class=HTMLResponse)
async def request_detail(request: Request, ctx: Ctx, reference: str) -> Response:
    current = await current_browser_session(request, ctx)
    if current is None:
        return _sign_in(f"{BASE}/{reference}")
    return await _detail_page(request, ctx, current, reference)


async def _detail_page(
    request: Request,
    ctx: BrokerContext,
    current: BrowserSession,
    reference: str,
    error: DomainError | None = None,
) -> Response:
    async with ctx.autocommit() as session:
        row = await service.get_own(session, current.account_id, reference)
        events = await service.history(session, row.id)
    return templates.TemplateResponse(
        request,
        "account/requests/detail.html",
        {
            "row": row,
            "events": events,
            "labels": LABELS,
            "csrf_token": current.csrf_token,
            "error": error,
        },
        status_code=error.status if error else 200,
    )


@router.post(BASE + "/{reference}/cancel", response_class=HTMLResponse)
async def cancel_request(
    request: Request, ctx: Ctx, request_id: RequestId, reference: str
) -> Response:
    return await _act(request, ctx, request_id, reference, code=None)


@router.post(BASE + "/{reference}/confirm-phone-code", response_class=HTMLResponse)
async def confirm_phone_code(
    request: Request, ctx: Ctx, request_id: RequestId, reference: str
) -> Response:
    form = await request.form()
    return await _act(request, ctx, request_id, reference, code=str(form.get("code") or ""))


async def _act(
    request: Request, ctx: BrokerContext, request_id: str, reference: str, code: str | None
) -> Response:
    """Cancel (no code) or confirm the phone code; a refusal shows the page with its reason."""
    require_same_origin(request, ctx)
    current = await current_browser_session(request, ctx)
    if current is None:
        return _sign_in(f"{BASE}/{reference}")
    _checked(current, await request.form())
    who = service.Requester(current.account_id, request_id)
    try:
        async with service.counting_wrong_codes(ctx.db) as session:
            if code is None:
                await service.cancel(session, reference, who, now=ctx.clock())
            else:
                await service.confirm_phone_code(
                    session, reference, code.strip(), who, now=ctx.clock(),
                    settings=ctx.settings, phone_code_key=ctx.phone_code_key,
                )  # fmt: skip
    except DomainError as refused:
        return await _detail_page(request, ctx, current, reference, refused)
    return RedirectResponse(f"{BASE}/{reference}", status_code=303)
