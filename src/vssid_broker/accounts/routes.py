"""The signed-in person's own account, for the app."""

from __future__ import annotations

from fastapi import APIRouter

from vssid_broker.accounts import service
from vssid_broker.accounts.schemas import (
    AccountOut,
    HealthCardOut,
    InsuranceOut,
    PeriodOut,
    SummaryOut,
)
from vssid_broker.deps import Caller, Ctx

router = APIRouter(prefix="/api/v1/me", tags=["account"])


@router.get("", response_model=AccountOut)
async def me(caller: Caller, ctx: Ctx) -> AccountOut:
    async with ctx.autocommit() as session:
        # One primary-key read: the history and the card are not part of this answer.
        return AccountOut.of(await service.get_account_row(session, caller.account_id))


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
