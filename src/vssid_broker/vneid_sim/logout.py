"""Logout in both directions: RP-initiated (the client sends the person to `/logout`, OpenID
Connect RP-Initiated Logout 1.0, by GET or POST as `end_session_methods` allows), back-channel
(the provider posts a logout token to clients, OpenID Connect Back-Channel Logout 1.0) and
front-channel (the logged-out page loads each client's logout URI in an iframe, OpenID Connect
Front-Channel Logout 1.0).

Each sign-in opens a VNeID session (`sid` in the ID token). Logging out ends the session the
`id_token_hint` names, revokes the access tokens the client holds for that citizen, and tells
the session's clients that registered a front-channel logout URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError

from .citizens import Citizen
from .id_tokens import issue_logout_token
from .keys import SIGNING_ALG
from .pages import error_page, render
from .protocol import Refused, add_endpoint
from .state import SimState, VneidSession


@dataclass(frozen=True)
class FrontChannelFrame:
    client_name: str
    uri: str


async def logout(state: SimState, request: Request) -> Response:
    check_method_served(state, request)
    params = await logout_parameters(request)
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    frames: list[FrontChannelFrame] = []
    if hint:
        client_id, sid = log_out_hinted_citizen(state, hint, client_id)
        ended = state.sessions.pop(sid, None) if sid else None
        frames = frontchannel_frames(state, sid, ended) if sid and ended else []
    target = params.get("post_logout_redirect_uri")
    continue_to = None
    if target:
        continue_to = post_logout_target(state, client_id, target, params.get("state"))
        if not frames:
            return RedirectResponse(continue_to, status_code=302)
    return logged_out_page(state, frames, continue_to)


def check_method_served(state: SimState, request: Request) -> None:
    """A provider may serve its end_session_endpoint by GET only (§2 allows either)."""
    served = state.settings.end_session_methods
    if request.method not in served:
        raise Refused(
            PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": ", ".join(served)}
            )
        )


def logged_out_page(
    state: SimState, frames: list[FrontChannelFrame], continue_to: str | None
) -> Response:
    """The page that ends a VNeID session: the front-channel iframes, then (after a moment for
    them to load) on to the client's post-logout redirect, if one was asked."""
    page = render(
        "logged_out.html", issuer=state.settings.issuer, frames=frames, continue_to=continue_to
    )
    if frames and continue_to:
        page.headers["Refresh"] = f"2; url={continue_to}"
    return page


def frontchannel_frames(
    state: SimState, sid: str, session: VneidSession
) -> list[FrontChannelFrame]:
    """Front-Channel Logout §2-3: each client of the session with a registered URI, with
    `iss` and `sid` added when the client asked for them."""
    frames = []
    for client_id in sorted(session.client_ids):
        client = state.clients.get(client_id)
        if client is None or not client.frontchannel_logout_uri:
            continue
        uri = client.frontchannel_logout_uri
        if client.frontchannel_logout_session_required:
            separator = "&" if "?" in uri else "?"
            uri += separator + urlencode({"iss": state.settings.issuer, "sid": sid})
        frames.append(FrontChannelFrame(client.client_name, uri))
    return frames


async def sign_out_everywhere(
    state: SimState, citizen: Citizen
) -> tuple[list[FrontChannelFrame], list[dict[str, Any]]]:
    """The citizen signs out of VNeID (in its app or portal): every session of theirs ends and
    their access tokens are revoked. Clients of each session hear of it by front channel (the
    frames returned, for the logged-out page) and by back channel (a logout token naming the
    session, §2.4; the deliveries returned)."""
    frames: list[FrontChannelFrame] = []
    deliveries: list[dict[str, Any]] = []
    state.revoke_tokens_for(citizen.citizen_id)
    async with httpx.AsyncClient(transport=state.outbound_transport, timeout=5.0) as http:
        for sid, session in list(state.sessions.items()):
            if session.citizen_id != citizen.citizen_id:
                continue
            del state.sessions[sid]
            frames += frontchannel_frames(state, sid, session)
            for client_id in sorted(session.client_ids):
                client = state.clients.get(client_id)
                if client is not None and client.backchannel_logout_uri:
                    deliveries.append(
                        await deliver_logout_token(
                            state, http, client_id, client.backchannel_logout_uri, citizen, sid
                        )
                    )
    return frames, deliveries


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


def log_out_hinted_citizen(
    state: SimState, hint: str, client_id: str | None
) -> tuple[str | None, str | None]:
    """Revoke the tokens of the citizen and client the hint names; return the client and the
    VNeID session (`sid`) the hint names.

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
    sid = claims.get("sid")
    return client_id, sid if isinstance(sid, str) else None


def post_logout_target(
    state: SimState, client_id: str | None, target: str, client_state: str | None
) -> str:
    """RP-Initiated Logout §3: only a `post_logout_redirect_uri` registered for the client,
    carrying `state` back unchanged."""
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
    return target


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
    state: SimState,
    http: httpx.AsyncClient,
    client_id: str,
    uri: str,
    citizen: Citizen,
    sid: str | None = None,
) -> dict[str, Any]:
    """One delivery (Back-Channel Logout §2.5), recorded with the client's HTTP status or the
    transport error; a failed delivery does not stop the others."""
    result: dict[str, Any] = {"client_id": client_id, "uri": uri}
    try:
        response = await http.post(
            uri, data={"logout_token": issue_logout_token(state, client_id, citizen, sid)}
        )
        result["status"] = response.status_code
    except httpx.HTTPError as error:
        result["error"] = type(error).__name__
    return result


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, "/logout", logout, methods=["GET", "POST"])
    return router
