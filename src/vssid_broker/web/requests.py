"""The person's requests to the agency, for the app: list, read, submit, confirm a new phone
number's code, cancel. Submitting is the one step that needs a fresh VNeID sign-in (RFC 9470):
a token whose `auth_time` is older than `VSSID_STEP_UP_MAX_AGE_SECONDS` gets the challenge."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from vssid_broker.errors import NotFound
from vssid_broker.login.step_up import require_recent_vneid_sign_in
from vssid_broker.requests import service
from vssid_broker.requests.facilities import facilities_of, province_of_card
from vssid_broker.requests.schemas import FacilityOut, PhoneCodeIn, RequestIn, RequestOut
from vssid_broker.requests.sms import DemoSmsSender
from vssid_broker.web.deps import Caller, Ctx, RequestId
from vssid_broker.web.rendering import templates

router = APIRouter(prefix="/api/v1/me/requests", tags=["requests"])
demo_router = APIRouter(include_in_schema=False)


@router.get("", response_model=list[RequestOut])
async def my_requests(caller: Caller, ctx: Ctx) -> list[RequestOut]:
    """Every request of the person, newest first (without their histories)."""
    async with ctx.autocommit() as session:
        rows = await service.list_own(session, caller.account_id)
    return [RequestOut.of(row) for row in rows]


@router.post("", response_model=RequestOut, status_code=201)
async def submit_request(
    body: RequestIn, caller: Caller, ctx: Ctx, request_id: RequestId, response: Response
) -> RequestOut:
    """A new request. Needs a VNeID level-2 sign-in within `VSSID_STEP_UP_MAX_AGE_SECONDS`:
    otherwise 401 `step_up_required` with `WWW-Authenticate: Bearer
    error="insufficient_user_authentication", max_age=…, acr_values=…`; the app then signs in
    again with `max_age` in `POST /api/v1/auth/vneid/start`."""
    now = ctx.clock()
    require_recent_vneid_sign_in(
        acr=caller.acr, auth_time=caller.auth_time, now=now, settings=ctx.settings
    )
    who = service.Requester(caller.account_id, request_id)
    async with ctx.db.begin() as session:
        row = await service.submit(
            session,
            body,
            who,
            now=now,
            settings=ctx.settings,
            sms=ctx.sms,
            phone_code_key=ctx.phone_code_key,
        )
        events = await service.history(session, row.id)
        out = RequestOut.of(row, events)
    response.headers["Location"] = f"{router.prefix}/{out.reference}"
    return out


@router.get("/facilities", response_model=list[FacilityOut])
async def my_facilities(caller: Caller, ctx: Ctx) -> list[FacilityOut]:
    """The primary-care facilities the person may choose (their card's province)."""
    async with ctx.autocommit() as session:
        card = await service.card_of(session, caller.account_id)
    province = province_of_card(card.card_code, card.facility_code)
    return [FacilityOut(code=f.code, name=f.name) for f in facilities_of(province)]


@router.get("/{reference}", response_model=RequestOut)
async def my_request(reference: str, caller: Caller, ctx: Ctx) -> RequestOut:
    async with ctx.autocommit() as session:
        row = await service.get_own(session, caller.account_id, reference)
        return RequestOut.of(row, await service.history(session, row.id))


@router.post("/{reference}/confirm-phone-code", response_model=RequestOut)
async def confirm_phone_code(
    reference: str, body: PhoneCodeIn, caller: Caller, ctx: Ctx, request_id: RequestId
) -> RequestOut:
    """The six digits sent to the new number: the request then reaches the agency."""
    who = service.Requester(caller.account_id, request_id)
    async with service.counting_wrong_codes(ctx.db) as session:
        row = await service.confirm_phone_code(
            session,
            reference,
            body.code,
            who,
            now=ctx.clock(),
            settings=ctx.settings,
            phone_code_key=ctx.phone_code_key,
        )
        return RequestOut.of(row, await service.history(session, row.id))


@router.post("/{reference}/cancel", response_model=RequestOut)
async def cancel_request(
    reference: str, caller: Caller, ctx: Ctx, request_id: RequestId
) -> RequestOut:
    """Only while the request is still waiting (submitted, or its code not yet confirmed)."""
    who = service.Requester(caller.account_id, request_id)
    async with ctx.db.begin() as session:
        row = await service.cancel(session, reference, who, now=ctx.clock())
        return RequestOut.of(row, await service.history(session, row.id))


@demo_router.get("/demo/sms", response_class=HTMLResponse)
async def demo_sms(ctx: Ctx, request: Request) -> Response:
    """The demo SMS sender's outbox: the codes it would have sent. Off unless the demo sender
    is configured and the broker runs on loopback (as `/demo/app`)."""
    if not isinstance(ctx.sms, DemoSmsSender) or ctx.settings.demo_app_redirect_uri is None:
        raise NotFound("the demo SMS outbox is off")
    return templates.TemplateResponse(request, "demo_sms.html", {"messages": ctx.sms.sent()})
