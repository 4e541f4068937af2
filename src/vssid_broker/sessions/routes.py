"""Token endpoints for the app (refresh, revoke) and the public keys for other services."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from vssid_broker.audit import service as audit
from vssid_broker.deps import Ctx, RequestId
from vssid_broker.errors import DomainError
from vssid_broker.sessions.schemas import TokensOut
from vssid_broker.sessions.tokens import RefreshTokenReused

router = APIRouter(tags=["tokens"])


class UnsupportedGrantType(DomainError):
    code = "unsupported_grant_type"
    message = "Loại yêu cầu cấp phiên không được hỗ trợ."


class MissingParameter(DomainError):
    code = "invalid_request"
    message = "Yêu cầu thiếu thông tin bắt buộc."


async def _params(request: Request) -> dict[str, Any]:
    """RFC 6749 bodies are form-encoded; JSON is accepted too, for the app's convenience."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError as error:
            raise MissingParameter("body is not valid JSON") from error
        return body if isinstance(body, dict) else {}
    return dict(await request.form())


@router.post("/api/v1/auth/token", response_model=TokensOut)
async def refresh(request: Request, ctx: Ctx, request_id: RequestId) -> TokensOut:
    params = await _params(request)
    if params.get("grant_type") != "refresh_token":
        raise UnsupportedGrantType("only grant_type=refresh_token is accepted here")
    raw = params.get("refresh_token")
    if not isinstance(raw, str) or not raw:
        raise MissingParameter("refresh_token is required")
    now = ctx.clock()
    refusal: DomainError | None = None
    async with ctx.db.begin() as session:
        try:
            issued = await ctx.tokens.rotate(session, raw, now)
        except RefreshTokenReused as error:
            # Commit what the refusal did (the family revoked) and say so in the trail.
            refusal = error
            audit.record(
                session,
                event_type="token.reuse_detected",
                outcome="family_revoked",
                now=now,
                account_id=error.account_id,
                request_id=request_id,
                family_id=error.family_id,
            )
        except DomainError as error:
            refusal = error
            audit.record(
                session,
                event_type="token.refresh",
                outcome=error.code,
                now=now,
                request_id=request_id,
            )
    if refusal is not None:
        raise refusal
    return TokensOut(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )


@router.post("/api/v1/auth/revoke", status_code=200)
async def revoke(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    params = await _params(request)
    raw = params.get("token")
    if not isinstance(raw, str) or not raw:
        raise MissingParameter("token is required")
    now = ctx.clock()
    async with ctx.db.begin() as session:
        account_id = await ctx.tokens.revoke(session, raw, now)
        if account_id is not None:
            audit.record(
                session,
                event_type="token.revoked",
                outcome="revoked",
                now=now,
                account_id=account_id,
                request_id=request_id,
            )
    # RFC 7009 §2.2: unknown tokens are answered 200 too, so revocation reveals nothing.
    return Response(status_code=200)


@router.get("/.well-known/jwks.json")
async def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    async with ctx.db() as session:
        keys = await ctx.keys.published(session, ctx.clock())
    response.headers["Cache-Control"] = "public, max-age=300"
    return keys
