"""Token endpoints: the app's (refresh, revoke), other services' (introspection, public keys)
and VNeID's (back-channel logout)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vssid_broker.audit import service as audit
from vssid_broker.config import Settings
from vssid_broker.deps import Caller, Ctx, RequestId, dpop_proof_if_sent
from vssid_broker.errors import DomainError, NotFound, Unauthorized
from vssid_broker.federation.logout_token import LogoutTokenRejected
from vssid_broker.sessions import service
from vssid_broker.sessions.schemas import SessionOut, TokensOut
from vssid_broker.sessions.tokens import RefreshTokenReused

log = logging.getLogger(__name__)

router = APIRouter(tags=["tokens"])

# Compared against when the client id is unknown, so both cases take the same time.
_NO_SUCH_SECRET = "\x00" * 64


class UnsupportedGrantType(DomainError):
    code = "unsupported_grant_type"
    message = "Loại yêu cầu cấp phiên không được hỗ trợ."


class MissingParameter(DomainError):
    code = "invalid_request"
    message = "Yêu cầu thiếu thông tin bắt buộc."


class InvalidServiceClient(Unauthorized):
    code = "invalid_client"
    message = "Dịch vụ gọi không được xác thực."
    headers = {"WWW-Authenticate": 'Basic realm="vssid-broker"'}  # noqa: RUF012 - RFC 6749 §5.2


def authenticate_service(request: Request, settings: Settings) -> str:
    """RFC 7662 §2.1: the caller authenticates; RFC 6749 §2.3.1 HTTP Basic, form-encoded parts.
    Secrets are compared in constant time, unknown ids against a dummy secret."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise InvalidServiceClient("introspection needs HTTP Basic client credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise InvalidServiceClient("malformed Basic credentials") from error
    raw_id, separator, raw_secret = decoded.partition(":")
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    client = next((c for c in settings.service_clients if c.client_id == client_id), None)
    expected = client.client_secret.get_secret_value() if client else _NO_SUCH_SECRET
    secret_ok = hmac.compare_digest(secret.encode(), expected.encode())
    if not separator or client is None or not secret_ok:
        raise InvalidServiceClient("unknown service client or wrong secret")
    return client_id


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
    proof = await dpop_proof_if_sent(request, ctx)
    now = ctx.clock()
    async with ctx.autocommit.begin() as session:
        issued = await ctx.tokens.rotate(session, raw, now, dpop_jkt=proof.jkt if proof else None)
    if issued is None:
        await _refuse_refresh(ctx, raw, now, request_id)
    return TokensOut(
        access_token=issued.access_token,
        token_type="DPoP" if issued.token_type == "DPoP" else "Bearer",
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )


async def _refuse_refresh(ctx: Ctx, raw: str, now: datetime, request_id: str) -> NoReturn:
    """The refusal of a refresh token that could not be spent, with what it did (a reused
    token's family revoked) committed together with its audit event."""
    async with ctx.db.begin() as session:
        try:
            await ctx.tokens.refuse_rotation(session, raw, now)
        except RefreshTokenReused as error:
            refusal: DomainError = error
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
    raise refusal


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


@router.post("/api/v1/auth/introspect")
async def introspect(request: Request, ctx: Ctx) -> dict[str, Any]:
    caller = authenticate_service(request, ctx.settings)
    params = await _params(request)
    raw = params.get("token")
    if not isinstance(raw, str) or not raw:
        raise MissingParameter("token is required")
    answer = await service.introspect(ctx, raw)
    log.info("introspection by %s active=%s", caller, answer["active"])
    return answer


@router.post("/auth/vneid/backchannel-logout", include_in_schema=False)
async def vneid_backchannel_logout(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    """OpenID Connect Back-Channel Logout 1.0 §2.5: VNeID posts a logout token here."""
    raw = (await request.form()).get("logout_token")
    try:
        if not isinstance(raw, str) or not raw:
            raise LogoutTokenRejected("logout_token is required")
        ended = await service.vneid_backchannel_logout(ctx, raw, request_id)
    except LogoutTokenRejected as refusal:
        log.info("back-channel logout refused: %s", refusal.detail)
        # §2.8: 400 with an OAuth-style error body.
        return JSONResponse(
            {"error": "invalid_request", "error_description": refusal.detail}, status_code=400
        )
    log.info("back-channel logout: %s", ended or "no linked account")
    return Response(status_code=200)


@router.get("/api/v1/me/sessions", response_model=list[SessionOut], tags=["account"])
async def my_sessions(caller: Caller, ctx: Ctx) -> list[SessionOut]:
    views = await service.list_sessions(ctx, caller.account_id)
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


@router.delete("/api/v1/me/sessions/{session_id}", status_code=204, tags=["account"])
async def end_my_session(
    session_id: str, caller: Caller, ctx: Ctx, request_id: RequestId
) -> Response:
    if not await service.end_session(ctx, caller.account_id, session_id[:64], request_id):
        raise NotFound("no live session of this account has that id")
    return Response(status_code=204)


@router.delete("/api/v1/me/sessions", status_code=204, tags=["account"])
async def end_all_my_sessions(caller: Caller, ctx: Ctx, request_id: RequestId) -> Response:
    await service.end_every_session(ctx, caller.account_id, request_id)
    return Response(status_code=204)


@router.get("/.well-known/jwks.json")
async def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    async with ctx.autocommit() as session:
        keys = await ctx.keys.published(session, ctx.clock())
    response.headers["Cache-Control"] = "public, max-age=300"
    return keys
