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
