"""Logout in both directions: RP-initiated (the client sends the person to `/logout`, OpenID
Connect RP-Initiated Logout 1.0) and back-channel (the provider tells clients a citizen is
gone, OpenID Connect Back-Channel Logout 1.0).

The simulator keeps no sign-in session, so logging out means revoking the access tokens the
client holds for the citizen named by the `id_token_hint`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError

from .citizens import Citizen
from .id_tokens import issue_logout_token
from .keys import SIGNING_ALG
from .pages import error_page, render
from .protocol import Refused, add_endpoint
from .state import SimState


async def logout(state: SimState, request: Request) -> Response:
    params = await logout_parameters(request)
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if hint:
        client_id = log_out_hinted_citizen(state, hint, client_id)
    target = params.get("post_logout_redirect_uri")
    if target:
        return redirect_after_logout(state, client_id, target, params.get("state"))
    return render("logged_out.html", issuer=state.settings.issuer)


async def logout_parameters(request: Request) -> dict[str, str]:
    """RP-Initiated Logout §2: GET with a query string, or POST with a form body."""
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
    return params


def refused_page(state: SimState, heading: str, message: str) -> Refused:
    return Refused(error_page(state.settings.issuer, heading, message))


def hint_claims(state: SimState, hint: str) -> dict[str, Any]:
    """RP-Initiated Logout §2: the `id_token_hint` must be an ID token this provider signed
    (an expired one is still accepted, since it only names who is logging out)."""
    try:
        claims = jwt.decode(hint, state.keys.public_key_set(), algorithms=[SIGNING_ALG]).claims
    except (JoseError, ValueError) as error:
        raise refused_page(state, "Không thể đăng xuất", "id_token_hint không hợp lệ.") from error
    if claims.get("iss") != state.settings.issuer:
        raise refused_page(state, "Không thể đăng xuất", "id_token_hint không do VNeID cấp.")
    return claims


def log_out_hinted_citizen(state: SimState, hint: str, client_id: str | None) -> str | None:
    """Revoke the tokens of the citizen and client the hint names; return the client.

    RP-Initiated Logout §2: a `client_id` sent beside the hint must be the hint's audience.
    """
    claims = hint_claims(state, hint)
    audience = claims.get("aud")
    hint_client = audience if isinstance(audience, str) else None
    if client_id and hint_client and client_id != hint_client:
        raise refused_page(state, "Không thể đăng xuất", "client_id không khớp id_token_hint.")
    client_id = client_id or hint_client
    citizen_id = state.citizen_id_by_sub.get(str(claims.get("sub")))
    if citizen_id and client_id:
        state.revoke_tokens_for(citizen_id, client_id)
    return client_id


def redirect_after_logout(
    state: SimState, client_id: str | None, target: str, client_state: str | None
) -> RedirectResponse:
    """RP-Initiated Logout §3: redirect only to a `post_logout_redirect_uri` registered for
    the client, carrying `state` back unchanged."""
    client = state.clients.get(client_id or "")
    if client is None or target not in client.post_logout_redirect_uris:
        raise refused_page(
            state,
            "Không thể chuyển hướng",
            "post_logout_redirect_uri chưa được đăng ký cho ứng dụng này.",
        )
    if client_state is not None:
        separator = "&" if "?" in target else "?"
        target += separator + urlencode({"state": client_state})
    return RedirectResponse(target, status_code=302)


async def send_backchannel_logouts(state: SimState, citizen: Citizen) -> list[dict[str, Any]]:
    """Back-Channel Logout §2.5: post a logout token to every client that received tokens for
    this citizen and registered a `backchannel_logout_uri`. Returns one record per delivery."""
    results: list[dict[str, Any]] = []
    client_ids = sorted(state.clients_by_citizen.pop(citizen.citizen_id, set()))
    async with httpx.AsyncClient(transport=state.outbound_transport, timeout=5.0) as http:
        for client_id in client_ids:
            client = state.clients.get(client_id)
            if client is not None and client.backchannel_logout_uri:
                uri = client.backchannel_logout_uri
                results.append(await deliver_logout_token(state, http, client_id, uri, citizen))
    return results


async def deliver_logout_token(
    state: SimState, http: httpx.AsyncClient, client_id: str, uri: str, citizen: Citizen
) -> dict[str, Any]:
    """One delivery (Back-Channel Logout §2.5), recorded with the client's HTTP status or the
    transport error; a failed delivery does not stop the others."""
    result: dict[str, Any] = {"client_id": client_id, "uri": uri}
    try:
        response = await http.post(
            uri, data={"logout_token": issue_logout_token(state, client_id, citizen)}
        )
        result["status"] = response.status_code
    except httpx.HTTPError as error:
        result["error"] = type(error).__name__
    return result


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, "/logout", logout, methods=["GET", "POST"])
    return router
