"""FastAPI dependencies shared by the routers: the broker context, the caller's account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vssid_broker.context import BrokerContext
from vssid_broker.sessions.dpop import (
    ASYMMETRIC_ALGS,
    InvalidDpopProof,
    VerifiedProof,
    check_proof,
)
from vssid_broker.sessions.tokens import AccessTokenClaims, InvalidAccessToken


# Both are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
# per request for a dictionary lookup (seen in the py-spy profiles of docs/performance.md).
async def get_ctx(request: Request) -> BrokerContext:
    ctx: BrokerContext = request.app.state.broker
    return ctx


async def get_request_id(request: Request) -> str:
    return str(request.state.request_id)


Ctx = Annotated[BrokerContext, Depends(get_ctx)]
RequestId = Annotated[str, Depends(get_request_id)]


DPOP_CHALLENGE = f'DPoP error="invalid_dpop_proof", algs="{" ".join(sorted(ASYMMETRIC_ALGS))}"'


class InvalidDpopProofAtResource(InvalidDpopProof):
    status = 401
    # RFC 9449 §7.1: the challenge names the algorithms we accept.
    headers = {"WWW-Authenticate": DPOP_CHALLENGE}  # noqa: RUF012


def request_uri(request: Request, ctx: BrokerContext) -> str:
    """The URI the client called, as it knows it: the public base URL, not the proxy's view."""
    return f"{ctx.settings.public_base_url}{request.url.path}"


async def dpop_proof_if_sent(request: Request, ctx: BrokerContext) -> VerifiedProof | None:
    """A token request's DPoP proof (RFC 9449 §5), checked and its jti spent; None if absent.
    Refused when absent and bearer tokens are not allowed."""
    proofs = request.headers.getlist("dpop")
    if not proofs:
        if not ctx.settings.bearer_tokens_allowed:
            raise InvalidDpopProof("a DPoP proof is required")
        return None
    async with ctx.db.begin() as session:
        return await check_proof(
            session,
            proofs,
            method=request.method,
            url=request_uri(request, ctx),
            now=ctx.clock(),
            settings=ctx.settings,
        )


async def bearer_claims(request: Request, ctx: Ctx) -> AccessTokenClaims:
    """The verified access token of an API call: `DPoP` (RFC 9449 §7) or `Bearer`
    (RFC 6750 §2.1), in the Authorization header only."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token, scheme = token.strip(), scheme.lower()
    if scheme not in ("bearer", "dpop") or not token:
        raise InvalidAccessToken("missing access token")
    if scheme == "bearer":
        async with ctx.autocommit() as session:
            claims = await ctx.tokens.verify_access_token(session, token, ctx.clock())
        # RFC 9449 §7.2: a bound token presented as a bearer token is refused.
        if claims.dpop_jkt is not None:
            raise InvalidAccessToken("a DPoP-bound token was sent as a bearer token")
        if not ctx.settings.bearer_tokens_allowed:
            raise InvalidAccessToken("bearer tokens are not allowed; use DPoP")
        return claims
    # The proof's jti is spent in the same transaction that reads the token's session.
    async with ctx.db.begin() as session:
        claims = await ctx.tokens.verify_access_token(session, token, ctx.clock())
        if claims.dpop_jkt is None:
            raise InvalidAccessToken("the DPoP scheme needs a DPoP-bound token")
        try:
            proof = await check_proof(
                session,
                request.headers.getlist("dpop"),
                method=request.method,
                url=request_uri(request, ctx),
                now=ctx.clock(),
                settings=ctx.settings,
                access_token=token,
            )
        except InvalidDpopProof as error:
            raise InvalidDpopProofAtResource(error.detail) from error
        # RFC 9449 §7.1: the proof's key must be the one the token is bound to.
        if proof.jkt != claims.dpop_jkt:
            raise InvalidDpopProofAtResource("DPoP proof key is not the token's key")
    return claims


Caller = Annotated[AccessTokenClaims, Depends(bearer_claims)]
