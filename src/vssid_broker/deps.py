"""FastAPI dependencies shared by the routers: the broker context, the caller's account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from vssid_broker.context import BrokerContext
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


async def bearer_claims(request: Request, ctx: Ctx) -> AccessTokenClaims:
    """The verified access token of an API call (RFC 6750 §2.1: Authorization header only)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidAccessToken("missing bearer token")
    async with ctx.db() as session:
        return await ctx.tokens.verify_access_token(session, token.strip(), ctx.clock())


Caller = Annotated[AccessTokenClaims, Depends(bearer_claims)]
