"""The mobile app's login endpoints: start at VNeID, complete with the app's own verifier."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vssid_broker import login
from vssid_broker.accounts.schemas import AccountOut
from vssid_broker.deps import Ctx, RequestId, dpop_proof_if_sent
from vssid_broker.federation.errors import AppRequestInvalid
from vssid_broker.federation.schemas import CompleteRequest, StartRequest, StartResponse
from vssid_broker.sessions.schemas import LoginTokensOut

router = APIRouter(prefix="/api/v1/auth/vneid", tags=["mobile login"])


@router.post("/start", response_model=StartResponse)
async def start(body: StartRequest, ctx: Ctx) -> StartResponse:
    # RFC 9700 §2.1: redirect URIs are compared as exact strings, no patterns.
    if body.redirect_uri not in ctx.settings.app_redirect_uris:
        raise AppRequestInvalid(
            "redirect_uri is not registered for the app", code="invalid_redirect_uri"
        )
    started = await login.start(
        ctx,
        channel="app",
        redirect_uri=body.redirect_uri,
        app_code_challenge=body.code_challenge,
    )
    return StartResponse(
        authorization_url=started.authorization_url,
        state=started.state,
        expires_in=started.expires_in,
    )


@router.post("/complete", response_model=LoginTokensOut)
async def complete(
    body: CompleteRequest, request: Request, ctx: Ctx, request_id: RequestId
) -> LoginTokensOut:
    # RFC 9449 §5: a proof here binds the new refresh family and access tokens to the app's key.
    proof = await dpop_proof_if_sent(request, ctx)
    result = await login.finish_app(
        ctx,
        login.CallbackParams(state=body.state, code=body.code, iss=body.iss),
        code_verifier=body.code_verifier,
        request_id=request_id,
        client=login.ClientInfo(
            user_agent=request.headers.get("user-agent"), dpop_jkt=proof.jkt if proof else None
        ),
    )
    assert result.tokens is not None
    return LoginTokensOut.of(
        result.tokens, account=AccountOut.of(result.account), linked_now=result.newly_linked
    )
