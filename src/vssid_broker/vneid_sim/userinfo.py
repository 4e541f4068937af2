"""The UserInfo endpoint (OpenID Connect Core §5.3): the citizen's claims for a Bearer access
token, sent in the Authorization header or in a form body (RFC 6750 §2.1, §2.2)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import dialect
from .citizens import released_claims
from .faults import DEFAULT_SLOW_SECONDS
from .protocol import NO_STORE, Refused, add_endpoint, simulated_server_error
from .state import AccessToken, SimState


async def userinfo(state: SimState, request: Request) -> JSONResponse:
    if state.faults.take("userinfo_http_500"):
        raise Refused(simulated_server_error())
    slow = state.faults.take("userinfo_slow")
    if slow is not None:
        await asyncio.sleep(
            DEFAULT_SLOW_SECONDS if slow.delay_seconds is None else slow.delay_seconds
        )
    token_value = await presented_token(request)
    record = live_access_token(state, token_value)
    if dialect.speaks_dialect(state):
        claims = dialect.citizen_claims(state.citizens[record.citizen_id], state)
        return JSONResponse(dialect.sealed(state, claims), headers=NO_STORE)
    return citizen_claims(state, record)


def bearer_error(error: str | None, description: str, status_code: int) -> Refused:
    """RFC 6750 §3: the WWW-Authenticate challenge; with no token at all it names no error
    (§3.1), so a client learns only that authentication is needed."""
    challenge = 'Bearer realm="vneid-sim"'
    body: dict[str, str] = {}
    if error:
        challenge += f', error="{error}", error_description="{description}"'
        body = {"error": error, "error_description": description}
    return Refused(
        JSONResponse(body, status_code=status_code, headers={"WWW-Authenticate": challenge})
    )


async def presented_token(request: Request) -> str:
    """RFC 6750 §2: the token from the header (§2.1) or a form-encoded POST body (§2.2), and
    by exactly one method."""
    header = request.headers.get("authorization", "")
    body_token: str | None = None
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        body_token = (await request.form()).get("access_token")  # type: ignore[assignment]
    header_token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if header_token and body_token:
        raise bearer_error("invalid_request", "send the access token only once", 400)
    token_value = header_token or body_token
    if not token_value:
        raise bearer_error(None, "access token required", 401)
    return token_value


def live_access_token(state: SimState, token_value: str) -> AccessToken:
    """RFC 6750 §3.1: an unknown, revoked or expired token is invalid_token (401)."""
    record = state.access_tokens.get(token_value)
    if record is None or record.revoked or record.expires_at <= state.now():
        raise bearer_error("invalid_token", "access token is unknown, revoked or expired", 401)
    return record


def citizen_claims(state: SimState, record: AccessToken) -> JSONResponse:
    """OpenID Connect Core §5.3.2: `sub` must equal the ID token's; the userinfo_wrong_sub
    fault breaks exactly that, which a client must detect."""
    citizen = state.citizens[record.citizen_id]
    # §5.4: only what the scopes granted with the access token cover.
    claims: dict[str, Any] = {"sub": str(citizen.sub), **released_claims(citizen, record.scope)}
    if state.faults.take("userinfo_wrong_sub"):
        claims["sub"] = str(uuid.uuid4())
    return JSONResponse(claims, headers=NO_STORE)


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, "/userinfo", userinfo, methods=["GET", "POST"])
    return router
