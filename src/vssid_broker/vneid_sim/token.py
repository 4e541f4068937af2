"""The token endpoint (RFC 6749 §3.2), for the authorization code grant only: exchange a code
for an access token and an ID token (§4.1.3, OpenID Connect Core §3.1.3).

The token_* faults act before the request is read, so a call they break does not spend the
code and the client can retry with it.
"""

from __future__ import annotations

import asyncio
import re
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from . import dialect
from .citizens import Citizen
from .faults import DEFAULT_SLOW_SECONDS
from .id_tokens import issue_id_token
from .protocol import (
    LOCKED_MESSAGE,
    NO_STORE,
    Refused,
    add_endpoint,
    authenticated_client,
    refuse,
    s256,
    simulated_server_error,
    single_valued_form,
)
from .state import AccessToken, AuthorizationCode, SimState, new_handle

CODE_VERIFIER_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


async def token(state: SimState, request: Request) -> JSONResponse:
    state.purge_expired()
    await apply_token_faults(state)
    form = await single_valued_form(request)
    client = await authenticated_client(state, request, form, "/token")
    check_grant_type(form)
    return exchange_code(state, form, client.client_id)


async def apply_token_faults(state: SimState) -> None:
    """The scripted token_* misbehaviour, in a fixed order: 500, an HTML body, a delay,
    invalid_grant."""
    if state.faults.take("token_http_500"):
        raise Refused(simulated_server_error())
    if state.faults.take("token_non_json"):
        raise Refused(HTMLResponse("<html><body><h1>Bảo trì hệ thống</h1></body></html>"))
    slow = state.faults.take("token_slow")
    if slow is not None:
        delay = DEFAULT_SLOW_SECONDS if slow.delay_seconds is None else slow.delay_seconds
        await asyncio.sleep(delay)
    if state.faults.take("token_invalid_grant"):
        raise refuse("invalid_grant", "simulated fault token_invalid_grant")


def check_grant_type(form: dict[str, str]) -> None:
    """RFC 6749 §4.1.3 and §5.2: `grant_type` is required; only authorization_code is served."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise refuse("invalid_request", "grant_type is missing")
    if grant_type != "authorization_code":
        raise refuse("unsupported_grant_type", "only authorization_code is supported")


def exchange_code(state: SimState, form: dict[str, str], client_id: str) -> JSONResponse:
    code = known_code(state, form, client_id)
    spend(state, code)
    check_not_expired(state, code)
    check_redirect_uri(form, code)
    check_pkce(form, code)
    citizen = unlocked_citizen(state, code)
    return issue_tokens(state, code, citizen, client_id)


def known_code(state: SimState, form: dict[str, str], client_id: str) -> AuthorizationCode:
    """RFC 6749 §4.1.3: the code must have been issued to the authenticated client."""
    code = state.codes.get(form.get("code", ""))
    if code is None or code.request.client_id != client_id:
        raise refuse("invalid_grant", "unknown authorization code")
    return code


def spend(state: SimState, code: AuthorizationCode) -> None:
    """RFC 6749 §4.1.2: a code is used once; when it comes back the request is denied and the
    tokens issued from it are revoked (see also §10.5). It counts as used from the first
    attempt on, even if a later check fails."""
    if code.used:
        for access_token in code.access_tokens:
            if access_token in state.access_tokens:
                state.access_tokens[access_token].revoked = True
        raise refuse("invalid_grant", "authorization code was already used; its tokens are revoked")
    code.used = True


def check_not_expired(state: SimState, code: AuthorizationCode) -> None:
    """RFC 6749 §4.1.2: codes are short-lived (`code_ttl_seconds`)."""
    if code.expires_at <= state.now():
        raise refuse("invalid_grant", "authorization code has expired")


def check_redirect_uri(form: dict[str, str], code: AuthorizationCode) -> None:
    """RFC 6749 §4.1.3: `redirect_uri` must be identical to the authorization request's."""
    if form.get("redirect_uri") != code.request.redirect_uri:
        raise refuse("invalid_grant", "redirect_uri differs from the authorization request")


def check_pkce(form: dict[str, str], code: AuthorizationCode) -> None:
    """RFC 7636 §4.1 and §4.6: a well-formed `code_verifier` whose S256 is the challenge."""
    verifier = form.get("code_verifier", "")
    if not CODE_VERIFIER_PATTERN.fullmatch(verifier) or not secrets.compare_digest(
        s256(verifier), code.request.code_challenge
    ):
        raise refuse("invalid_grant", "PKCE verification failed")


def unlocked_citizen(state: SimState, code: AuthorizationCode) -> Citizen:
    """An account locked after the sign-in gets no tokens (invalid_grant, RFC 6749 §5.2)."""
    citizen = state.citizens[code.citizen_id]
    if citizen.locked:
        raise refuse("invalid_grant", LOCKED_MESSAGE)
    return citizen


def issue_tokens(
    state: SimState, code: AuthorizationCode, citizen: Citizen, client_id: str
) -> JSONResponse:
    """RFC 6749 §5.1 with the ID token (OpenID Connect Core §3.1.3.3), never cached. The
    client is remembered for the citizen so a later lock can send it a logout token."""
    access_token = new_handle()
    ttl = state.settings.access_token_ttl_seconds
    state.access_tokens[access_token] = AccessToken(
        client_id=client_id,
        citizen_id=citizen.citizen_id,
        scope=code.request.scope,
        expires_at=state.now() + ttl,
    )
    code.access_tokens.append(access_token)
    state.clients_by_citizen.setdefault(citizen.citizen_id, set()).add(client_id)
    if code.sid in state.sessions:
        state.sessions[code.sid].client_ids.add(client_id)
    answer = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": code.request.scope,
    }
    if dialect.speaks_dialect(state):
        # The dialect has no ID token: the identity is read from userinfo.
        return JSONResponse(dialect.sealed(state, answer), headers=NO_STORE)
    answer["id_token"] = issue_id_token(state, code, citizen)
    return JSONResponse(answer, headers=NO_STORE)


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, "/token", token, methods=["POST"])
    return router
