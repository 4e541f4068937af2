"""The app's password sign-in for VssID accounts (social-insurance code or citizen ID)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vssid_broker.accounts import passwords
from vssid_broker.accounts.schemas import AccountOut
from vssid_broker.audit import service as audit
from vssid_broker.deps import Ctx, RequestId
from vssid_broker.errors import Forbidden
from vssid_broker.federation.claims import mask_citizen_id
from vssid_broker.sessions.schemas import LoginTokensOut

router = APIRouter(prefix="/api/v1/auth", tags=["mobile login"])


class PasswordSignIn(BaseModel):
    identifier: str = Field(
        min_length=1, max_length=20, description="10-digit BHXH code or 12-digit citizen ID"
    )
    password: str = Field(min_length=1, max_length=1024)


@router.post("/password", response_model=LoginTokensOut)
async def password_sign_in(body: PasswordSignIn, ctx: Ctx, request_id: RequestId) -> LoginTokensOut:
    now = ctx.clock()
    identifier = body.identifier.strip()
    async with ctx.db.begin() as session:
        outcome = await passwords.check(
            session, identifier, body.password, now=now, settings=ctx.settings
        )
        match outcome:
            case passwords.SignedIn(account):
                tokens = await ctx.tokens.issue(
                    session,
                    account_id=account.id,
                    acr=passwords.PASSWORD_ACR,
                    channel="app",
                    now=now,
                )
                result, account_id = "succeeded", account.id
            case passwords.NotActive(account):
                result, account_id = f"account_{account.status}", account.id
            case passwords.Failed(account_id, locked_now):
                result = "locked_now" if locked_now else "invalid_credentials"
            case passwords.Locked(account_id, _):
                result = "locked"
        audit.record(
            session,
            event_type="login.password",
            outcome=result,
            now=now,
            account_id=account_id,
            request_id=request_id,
            identifier=mask_citizen_id(identifier) if len(identifier) == 12 else identifier[:10],
        )
    # Committed above: a failure counts even though the request is refused.
    match outcome:
        case passwords.SignedIn(account):
            return LoginTokensOut.of(tokens, account=AccountOut.of(account), linked_now=False)
        case passwords.NotActive():
            raise Forbidden(
                "account not active",
                code="account_not_active",
                message="Tài khoản VssID của bạn đang bị khoá hoặc đã đóng. Vui lòng liên hệ "
                "cơ quan BHXH để được hỗ trợ.",
            )
        case passwords.Locked() | passwords.Failed(_, True):
            raise passwords.PasswordSignInLocked("too many wrong passwords")
        case _:
            raise passwords.WrongPassword("wrong identifier or password")
