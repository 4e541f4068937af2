"""The signed-in person's own data, for the app: the account, the insurance history, and the
person's sessions (browsers and app installations)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from vssid_broker import personal_data
from vssid_broker.accounts import service
from vssid_broker.accounts.schemas import (
    AccountOut,
    HealthCardOut,
    InsuranceOut,
    PeriodOut,
    SummaryOut,
)
from vssid_broker.errors import NotFound
from vssid_broker.login import logout
from vssid_broker.personal_data import PersonalDataExport
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.schemas import SessionOut
from vssid_broker.web.deps import Caller, Ctx, RequestId

router = APIRouter(prefix="/api/v1/me", tags=["account"])


@router.get("", response_model=AccountOut)
async def me(caller: Caller) -> AccountOut:
    # The token's check read the account already; the history and card are not in this answer.
    return AccountOut.model_validate(caller.account, from_attributes=True)


@router.get("/insurance", response_model=InsuranceOut)
async def my_insurance(caller: Caller, ctx: Ctx) -> InsuranceOut:
    async with ctx.autocommit() as session:
        account = await service.get_account(session, caller.account_id)
    today = ctx.clock().date()
    return InsuranceOut(
        summary=[SummaryOut.of(s) for s in service.summarise(account.periods, today)],
        periods=[PeriodOut.of(p) for p in account.periods],
        health_card=HealthCardOut.of(account.health_card) if account.health_card else None,
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
