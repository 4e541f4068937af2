"""Token endpoints: the app's (refresh, revoke), other services' (introspection, public keys)
and VNeID's (back-channel logout)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.config import Settings
from vssid_broker.context import BrokerContext
from vssid_broker.errors import DomainError
from vssid_broker.errors.tokens import (
    InvalidAccessToken,
    InvalidServiceClient,
    InvalidTokenRequest,
    LogoutTokenRejected,
    RefreshTokenReused,
)
from vssid_broker.login import logout
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions import tokens as app_tokens
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.sessions.schemas import TokensOut
from vssid_broker.web.deps import Ctx, RequestId, dpop_proof_if_sent
from vssid_broker.web.rate_limiting import LimitTokenEndpoint, limit_token_endpoint

log = logging.getLogger(__name__)

router = APIRouter(tags=["tokens"])

# Compared against when the client id is unknown, so both cases take the same time.
_NO_SUCH_SECRET = "\x00" * 64


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
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError as error:
            raise InvalidTokenRequest("body is not valid JSON") from error
        return body if isinstance(body, dict) else {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        # The standard library's parser: Starlette's form parser (python-multipart) cost a
        # twentieth of a refresh for these few fields. The last of a repeated field wins, as
        # with the form parser.
        body = (await request.body()).decode("utf-8", errors="replace")
        return dict(parse_qsl(body, keep_blank_values=True))
    return dict(await request.form())


@router.post("/api/v1/auth/token", response_model=TokensOut)
async def refresh(request: Request) -> Response:
    # The busiest call of all, so lean: the limit and the context as plain calls, not
    # FastAPI dependencies (their solving was 22 % of a refresh's profile samples, 15 % of
    # it the limit's own count), and the answer rendered here, not validated again against
    # `response_model` (which documents it).
    ctx: BrokerContext = request.app.state.broker
    await limit_token_endpoint(request, ctx)
    raw = RefreshTokens.validate_token_request(await _params(request))
    proof = await dpop_proof_if_sent(request, ctx)
    now = ctx.clock()
    async with ctx.autocommit.begin() as session:
        issued = await app_tokens.renew(
            session,
            ctx.access_tokens,
            ctx.refresh_tokens,
            raw,
            now,
            dpop_jkt=proof.jkt if proof else None,
        )
    if issued is None:
        await _refuse_refresh(ctx, raw, now, str(request.state.request_id))
    answer = TokensOut(
        access_token=issued.access_token,
        token_type="DPoP" if issued.token_type == "DPoP" else "Bearer",
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
    )
    return Response(answer.model_dump_json(), media_type="application/json")


async def _refuse_refresh(ctx: BrokerContext, raw: str, now: datetime, request_id: str) -> NoReturn:
    """The refusal of a refresh token that could not be spent, with what it did (a reused
    token's family revoked) committed together with its audit event."""
    async with ctx.db.begin() as session:
        try:
            await ctx.refresh_tokens.refuse(session, raw, now)
        except RefreshTokenReused as error:
            refusal: DomainError = error
            audit.record(
                session,
                event_type=error.audit_event or AuditEventType.TOKEN_REUSE_DETECTED,
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
                event_type=error.audit_event or AuditEventType.TOKEN_REFRESH,
                outcome=error.code,
                now=now,
                request_id=request_id,
            )
    raise refusal


@router.post("/api/v1/auth/revoke", status_code=200, dependencies=[LimitTokenEndpoint])
async def revoke(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    params = await _params(request)
    raw = params.get("token")
    if not isinstance(raw, str) or not raw:
        raise InvalidTokenRequest("token is required")
    now = ctx.clock()
    async with ctx.db.begin() as session:
        account_id = await app_tokens.revoke(
            session, ctx.access_tokens, ctx.refresh_tokens, raw, now
        )
        if account_id is not None:
            audit.record(
                session,
                event_type=AuditEventType.TOKEN_REVOKED,
                outcome="revoked",
                now=now,
                account_id=account_id,
                request_id=request_id,
            )
    # RFC 7009 §2.2: unknown tokens are answered 200 too, so revocation reveals nothing.
    return Response(status_code=200)


@router.post("/api/v1/auth/introspect", dependencies=[LimitTokenEndpoint])
async def introspect(request: Request, ctx: Ctx) -> dict[str, Any]:
    caller = authenticate_service(request, ctx.settings)
    params = await _params(request)
    raw = params.get("token")
    if not isinstance(raw, str) or not raw:
        raise InvalidTokenRequest("token is required")
    async with ctx.autocommit() as session:
        try:
            answer = sessions.introspection_answer(
                await ctx.access_tokens.verify(session, raw, ctx.clock())
            )
        except InvalidAccessToken:
            answer = {"active": False}
    log.info("introspection by %s active=%s", caller, answer["active"])
    return answer


@router.post("/auth/vneid/backchannel-logout", include_in_schema=False)
async def vneid_backchannel_logout(request: Request, ctx: Ctx, request_id: RequestId) -> Response:
    """OpenID Connect Back-Channel Logout 1.0 §2.5: VNeID posts a logout token here."""
    raw = (await request.form()).get("logout_token")
    try:
        if not isinstance(raw, str) or not raw:
            raise LogoutTokenRejected("logout_token is required")
        ended = await logout.vneid_backchannel_logout(ctx, raw, request_id)
    except LogoutTokenRejected as refusal:
        log.info("back-channel logout refused: %s", refusal.detail)
        # §2.8: 400 with an OAuth-style error body.
        return JSONResponse(
            {"error": "invalid_request", "error_description": refusal.detail}, status_code=400
        )
    log.info("back-channel logout: %s", ended or "no linked account")
    return Response(status_code=200)


@router.get("/.well-known/jwks.json")
async def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    async with ctx.autocommit() as session:
        keys = await ctx.keys.published(session, ctx.clock())
    response.headers["Cache-Control"] = "public, max-age=300"
    return keys
