"""The mobile app's login API: start at VNeID, complete with the app's own verifier, the
password sign-in, and rule 3's proof by password."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vssid_broker.accounts.schemas import AccountOut
from vssid_broker.errors.login import AppRedirectUriInvalid
from vssid_broker.linking.proof import ProofLinked
from vssid_broker.login import flow as login
from vssid_broker.login import password
from vssid_broker.login.schemas import (
    CompleteRequest,
    LoginTokensOut,
    PasswordSignIn,
    ProofOut,
    ProofRequest,
    StartRequest,
    StartResponse,
)
from vssid_broker.web.deps import Ctx, RequestId, dpop_proof_if_sent
from vssid_broker.web.rate_limiting import LimitLoginStart, LimitTokenEndpoint, password_attempt

router = APIRouter(prefix="/api/v1/auth", tags=["mobile login"])


@router.post("/vneid/start", response_model=StartResponse, dependencies=[LimitLoginStart])
async def start(body: StartRequest, ctx: Ctx) -> StartResponse:
    # RFC 9700 §2.1: redirect URIs are compared as exact strings, no patterns.
    if not ctx.settings.is_app_redirect_uri(body.redirect_uri):
        raise AppRedirectUriInvalid("redirect_uri is not registered for the app")
    started = await login.start(
        ctx,
        channel="app",
        redirect_uri=body.redirect_uri,
        app_code_challenge=body.code_challenge,
        max_age=body.max_age,
        prompt=body.prompt,
    )
    return StartResponse(
        authorization_url=started.authorization_url,
        state=started.state,
        expires_in=started.expires_in,
    )


@router.post("/vneid/complete", response_model=LoginTokensOut, dependencies=[LimitTokenEndpoint])
async def complete(
    body: CompleteRequest, request: Request, ctx: Ctx, request_id: RequestId
) -> LoginTokensOut:
    # RFC 9449 §5: a proof here binds the new refresh family and access tokens to the app's key.
    proof = await dpop_proof_if_sent(request, ctx)
    result = await login.finish_app(
        ctx,
        login.CallbackParams(
            state=body.state,
            code=body.code,
            iss=body.iss,
            error=body.error,
            encrypt_key=body.encrypt_key,
        ),
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


@router.post("/vneid/prove", response_model=ProofOut)
async def prove(body: ProofRequest, request: Request, ctx: Ctx, request_id: RequestId) -> ProofOut:
    async with password_attempt(request, ctx, realm="account", identifier=body.identifier):
        outcome = await password.prove_ownership(
            ctx,
            ticket=body.proof_ticket,
            identifier=body.identifier,
            password=body.password,
            request_id=request_id,
        )
    return ProofOut(outcome="linked" if isinstance(outcome, ProofLinked) else "filed_for_review")


@router.post("/password", response_model=LoginTokensOut)
async def password_sign_in(
    body: PasswordSignIn, request: Request, ctx: Ctx, request_id: RequestId
) -> LoginTokensOut:
    async with password_attempt(request, ctx, realm="account", identifier=body.identifier):
        account, issued = await password.sign_in(
            ctx, body.identifier, body.password, request_id=request_id
        )
    assert issued.tokens is not None
    return LoginTokensOut.of(issued.tokens, account=AccountOut.of(account), linked_now=False)
