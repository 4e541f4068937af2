"""The signed-in person's own data, for the app: the account, the insurance history, and the
person's sessions (browsers and app installations)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from vssid_broker import personal_data
from vssid_broker.accounts import health_card, service
from vssid_broker.accounts.models import Account, HealthInsuranceCard
from vssid_broker.accounts.schemas import (
    AccountOut,
    BenefitOut,
    ContributionsOut,
    HealthCardOut,
    InsuranceOut,
    PageOut,
    PeriodOut,
    SummaryOut,
)
from vssid_broker.context import BrokerContext
from vssid_broker.errors import NotFound
from vssid_broker.login import logout
from vssid_broker.personal_data import PersonalDataExport
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.schemas import SessionOut
from vssid_broker.web.deps import Caller, Ctx, RequestId, bearer_claims

router = APIRouter(prefix="/api/v1/me", tags=["account"])


@router.get("", response_model=AccountOut)
async def me(request: Request) -> Response:
    # The account, from what the token's check already holds (the account's row, read with
    # the session's liveness); the history and card are not in this answer. The check is
    # `Caller`'s own function, called rather than declared: FastAPI's solving of the two
    # dependencies took 23.6 % of a profile's samples, the check itself 9.5 %
    # (docs/performance.md, round 3).
    # Rendered here, not by FastAPI (it would validate the model again against
    # `response_model`): kept rendered beside the cached row without the citizen ID, the ID
    # opened and put in per call (`AccessTokenClaims.account_json`; the cache never holds it
    # in clear).
    caller = await bearer_claims(request, request.app.state.broker)
    return Response(caller.account_json(), media_type="application/json")


Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)]
Offset = Annotated[int, Query(ge=0, le=100_000)]


@router.get("/insurance", response_model=InsuranceOut)
async def my_insurance(caller: Caller, ctx: Ctx, limit: Limit = 20) -> InsuranceOut:
    """The summary by kind, months contributed, and the first page of participation periods
    and of benefits received (newest first); page on with the two routes below."""
    today = ctx.clock().date()
    async with ctx.autocommit() as session:
        account = await service.get_account(session, caller.account_id)
        benefits = await service.benefits_page(session, account.id, offset=0, limit=limit)
    periods = service.periods_page_of(account, offset=0, limit=limit)
    card = account.health_card
    return InsuranceOut(
        summary=[SummaryOut.of(s) for s in service.summarise(account.periods, today)],
        contributions=ContributionsOut.of(service.contributions(account.periods, today)),
        periods=PageOut[PeriodOut].of(periods, PeriodOut.of),
        benefits=PageOut[BenefitOut].of(benefits, BenefitOut.of),
        health_card=HealthCardOut.of(card, today) if card else None,
    )


@router.get("/export", response_model=PersonalDataExport)
async def my_data(caller: Caller, ctx: Ctx, request_id: RequestId) -> PersonalDataExport:
    """Everything the broker holds about the person, as JSON (their right to a copy).
    The export is itself audited."""
    async with ctx.db.begin() as session:
        return await personal_data.export(
            session,
            ctx.refresh_tokens,
            caller.account_id,
            now=ctx.clock(),
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
            request_id=request_id,
        )


@router.get("/insurance/periods", response_model=PageOut[PeriodOut])
async def my_periods(
    caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 20
) -> PageOut[PeriodOut]:
    async with ctx.autocommit() as session:
        page = await service.periods_page(session, caller.account_id, offset=offset, limit=limit)
    return PageOut[PeriodOut].of(page, PeriodOut.of)


@router.get("/insurance/benefits", response_model=PageOut[BenefitOut])
async def my_benefits(
    caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 20
) -> PageOut[BenefitOut]:
    async with ctx.autocommit() as session:
        page = await service.benefits_page(session, caller.account_id, offset=offset, limit=limit)
    return PageOut[BenefitOut].of(page, BenefitOut.of)


CARD_IMAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"description": "No health-insurance card (`health_card_absent`)"},
    410: {"description": "The card has expired (`health_card_expired`)"},
}


@router.get(
    "/health-card.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **CARD_IMAGE_RESPONSES},
)
async def my_health_card_png(caller: Caller, ctx: Ctx) -> Response:
    """The card's face with the QR code clinics scan, as the app shows it."""
    account, card = await _usable_card(caller.account_id, ctx)
    # Drawing and QR encoding take tens of milliseconds of CPU: off the event loop.
    png = await run_in_threadpool(health_card.render_png, account, card)
    return Response(png, media_type="image/png")


@router.get(
    "/health-card.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **CARD_IMAGE_RESPONSES},
)
async def my_health_card_svg(caller: Caller, ctx: Ctx) -> Response:
    account, card = await _usable_card(caller.account_id, ctx)
    svg = await run_in_threadpool(health_card.render_svg, account, card)
    return Response(svg, media_type="image/svg+xml")


@router.get(
    "/health-card-qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}, **CARD_IMAGE_RESPONSES},
)
async def my_health_card_qr_svg(caller: Caller, ctx: Ctx) -> Response:
    """The card's QR code alone, to show as wide as the screen at a clinic's counter."""
    account, card = await _usable_card(caller.account_id, ctx)
    svg = await run_in_threadpool(health_card.qr_svg_file, account, card)
    return Response(svg, media_type="image/svg+xml")


async def _usable_card(account_id: int, ctx: BrokerContext) -> tuple[Account, HealthInsuranceCard]:
    async with ctx.autocommit() as session:
        account = await service.get_account(session, account_id)
    return account, health_card.usable_card(account, ctx.clock().date())


@router.get("/sessions", response_model=list[SessionOut])
async def my_sessions(caller: Caller, ctx: Ctx) -> list[SessionOut]:
    async with ctx.db() as session:
        views = await sessions.list_sessions(
            session,
            ctx.refresh_tokens,
            caller.account_id,
            ctx.clock(),
            browser_idle_seconds=ctx.settings.browser_session_idle_seconds,
        )
    return [
        SessionOut(
            id=view.id,
            channel="browser" if view.channel == "browser" else "app",
            device=view.device,
            device_name=view.device_name,
            created_at=view.created_at,
            last_used_at=view.last_used_at,
            expires_at=view.expires_at,
            current=view.id == caller.session_id,
        )
        for view in views
    ]


@router.delete("/sessions/{session_id}", status_code=204)
async def end_my_session(
    session_id: str, caller: Caller, ctx: Ctx, request_id: RequestId
) -> Response:
    if not await logout.end_session(ctx, caller.account_id, session_id[:64], request_id):
        raise NotFound("no live session of this account has that id")
    return Response(status_code=204)


@router.delete("/sessions", status_code=204)
async def end_all_my_sessions(caller: Caller, ctx: Ctx, request_id: RequestId) -> Response:
    await logout.end_every_session(ctx, caller.account_id, request_id)
    return Response(status_code=204)
