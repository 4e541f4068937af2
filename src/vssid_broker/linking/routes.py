"""Rule 3's proof: the app proves a candidate account by its password after a VNeID login."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vssid_broker.accounts import passwords
from vssid_broker.deps import Ctx, RequestId
from vssid_broker.errors import Conflict, DomainError, Forbidden
from vssid_broker.linking import service as linking

router = APIRouter(prefix="/api/v1/auth/vneid", tags=["mobile login"])


class ProofRequest(BaseModel):
    proof_ticket: str = Field(
        min_length=1, max_length=200, description="from the link_under_review problem"
    )
    identifier: str = Field(min_length=1, max_length=20, description="BHXH code or citizen ID")
    password: str = Field(min_length=1, max_length=1024)


class ProofOut(BaseModel):
    outcome: Literal["linked", "filed_for_review"]
    """`linked`: sign in with VNeID again; `filed_for_review`: staff confirm the proof."""


class ProofInvalid(DomainError):
    status = 400
    code = "proof_invalid"
    message = (
        "Phiên xác minh đã hết hạn hoặc đã được sử dụng. Vui lòng đăng nhập lại bằng tài khoản "
        "định danh điện tử."
    )


class ProofNotACandidate(Forbidden):
    code = "proof_not_a_candidate"
    message = "Tài khoản này không khớp với thông tin định danh điện tử của bạn."


REFUSALS: dict[str, DomainError] = {
    "proof_invalid": ProofInvalid(),
    "invalid_credentials": passwords.WrongPassword(),
    "locked": passwords.PasswordSignInLocked(),
    "account_not_active": Forbidden(
        code="account_not_active",
        message="Tài khoản VssID của bạn đang bị khoá hoặc đã đóng. Vui lòng liên hệ cơ quan "
        "BHXH để được hỗ trợ.",
    ),
    "not_a_candidate": ProofNotACandidate(),
    "already_linked": Conflict(
        code="already_linked", message="Tài khoản VssID này đã được liên kết."
    ),
}


@router.post("/prove", response_model=ProofOut)
async def prove(body: ProofRequest, ctx: Ctx, request_id: RequestId) -> ProofOut:
    async with ctx.db.begin() as session:
        outcome = await linking.prove_ownership(
            session,
            ticket=body.proof_ticket,
            identifier=body.identifier.strip(),
            password=body.password,
            now=ctx.clock(),
            settings=ctx.settings,
            request_id=request_id,
        )
    # Committed above: a spent ticket and a failure count stay spent even when refused.
    match outcome:
        case linking.ProofLinked():
            return ProofOut(outcome="linked")
        case linking.ProofFiled():
            return ProofOut(outcome="filed_for_review")
        case linking.ProofRefused(reason):
            template = REFUSALS[reason]
            raise type(template)(
                f"proof refused: {reason}",
                code=template.code,
                message=template.message,
                status=template.status,
            )
