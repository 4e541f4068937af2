"""FastAPI dependencies shared by the routers: the broker context, the request id, the
caller (a person's access token, or a staff member with a role), the same-origin check of
forms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.context import BrokerContext
from vssid_broker.errors.login import CsrfRefused
from vssid_broker.errors.staff import InvalidStaffToken
from vssid_broker.errors.tokens import InvalidAccessToken, InvalidDpopProof
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.access_tokens import AccessTokenClaims
from vssid_broker.sessions.dpop import InvalidDpopProofAtResource, VerifiedProof, check_proof
from vssid_broker.sessions.models import BrowserSession


# Both are `async def`: FastAPI runs a plain `def` dependency in its thread pool, a thread hop
# per request for a dictionary lookup (seen in the py-spy profiles of docs/performance.md).
async def get_ctx(request: Request) -> BrokerContext:
    ctx: BrokerContext = request.app.state.broker
    return ctx


async def get_request_id(request: Request) -> str:
    return str(request.state.request_id)


def require_same_origin(request: Request, ctx: BrokerContext) -> None:
    """OWASP CSRF cheat sheet, defence in depth: a foreign Origin is refused outright."""
    origin = request.headers.get("origin")
    if origin is not None and origin != ctx.settings.public_base_url:
        raise CsrfRefused("state-changing request from a foreign origin")


Ctx = Annotated[BrokerContext, Depends(get_ctx)]
RequestId = Annotated[str, Depends(get_request_id)]


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
        # No session at all when the process's caches answer (`AccessTokens.verify_opening`).
        claims = await ctx.access_tokens.verify_opening(ctx.autocommit, token, ctx.clock())
        # RFC 9449 §7.2: a bound token presented as a bearer token is refused.
        if claims.dpop_jkt is not None:
            raise InvalidAccessToken("a DPoP-bound token was sent as a bearer token")
        if not ctx.settings.bearer_tokens_allowed:
            raise InvalidAccessToken("bearer tokens are not allowed; use DPoP")
        return claims
    # The proof's jti is spent in the same transaction that reads the token's session.
    async with ctx.db.begin() as session:
        claims = await ctx.access_tokens.verify(session, token, ctx.clock())
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


staff_bearer = HTTPBearer(
    scheme_name="staffToken",
    bearerFormat="JWT",
    description="A staff token from `POST /admin/api/v1/token` (15 minutes).",
    auto_error=False,
)
"""Declares the admin API's bearer scheme in the OpenAPI document, so /docs can send it."""


async def staff_caller(
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(staff_bearer)],
) -> StaffUser:
    """The staff user behind the bearer token (RFC 6750 §2.1: Authorization header only)."""
    if credentials is None or not credentials.credentials.strip():
        raise InvalidStaffToken("missing bearer token")
    async with ctx.db() as session:
        return await staff.verify_staff_token(
            session, ctx.keys, ctx.settings, credentials.credentials.strip(), ctx.clock()
        )


Staff = Annotated[StaffUser, Depends(staff_caller)]


def staff_with_role(*roles: StaffRole) -> Any:
    """A route or router dependency: the caller is a staff member with one of `roles`. Put on
    the router, it guards every route of it, so a new admin route cannot forget the check."""

    async def check(user: Staff) -> StaffUser:
        staff.require_role(user, *roles)
        return user

    return Depends(check)


async def current_browser_session(request: Request, ctx: BrokerContext) -> BrowserSession | None:
    """The live session behind the cookie (idle and absolute timeouts applied), touched: one
    conditional UPDATE, a transaction of its own (no BEGIN and COMMIT around it)."""
    async with ctx.autocommit.begin() as session:
        return await browser_sessions.find(
            session,
            request.cookies.get(browser_sessions.SESSION_COOKIE),
            ctx.clock(),
            idle_seconds=ctx.settings.browser_session_idle_seconds,
        )
