"""Pushed authorization requests (RFC 9126): the client posts the authorization request
directly, authenticated, and gets a single-use `request_uri` to send the person with.

Both halves live here: storing the request (`POST /par`) and taking it back out when the
authorization endpoint receives the `request_uri` (`take_pushed_request`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .authorization import AuthorizationError, parse_authorization_request
from .config import ClientRegistration
from .protocol import NO_STORE, add_endpoint, authenticated_client, refuse, single_valued_form
from .state import AuthorizationRequest, PushedRequest, SimState, new_handle

PAR_URN_PREFIX = "urn:ietf:params:oauth:request_uri:"


async def push_authorization_request(state: SimState, request: Request) -> JSONResponse:
    state.purge_expired()
    form = await single_valued_form(request)
    client = await authenticated_client(state, request, form, "/par")
    check_no_request_uri(form)
    check_client_id_matches(form, client)
    auth_request = validated_request(state, form, client)
    return store_pushed_request(state, auth_request)


def check_no_request_uri(form: dict[str, str]) -> None:
    """RFC 9126 §2.1: a pushed request must not itself carry `request_uri`."""
    if "request_uri" in form:
        raise refuse("invalid_request", "request_uri is not allowed at the PAR endpoint")


def check_client_id_matches(form: dict[str, str], client: ClientRegistration) -> None:
    """RFC 9126 §2.1: the pushed request belongs to the client that authenticated, so a
    different `client_id` in the body is refused."""
    if form.get("client_id", client.client_id) != client.client_id:
        raise refuse("invalid_request", "client_id does not match the authenticated client")


def validated_request(
    state: SimState, form: dict[str, str], client: ClientRegistration
) -> AuthorizationRequest:
    """RFC 9126 §2.1: the same rules as at the authorization endpoint, but an error is
    answered here as JSON (§2.3) instead of by redirecting the person."""
    try:
        return parse_authorization_request(state, {**form, "client_id": client.client_id})
    except AuthorizationError as error:
        raise refuse(error.error, error.description) from error


def store_pushed_request(state: SimState, auth_request: AuthorizationRequest) -> JSONResponse:
    """RFC 9126 §2.2: 201 with a fresh `request_uri` and its lifetime."""
    request_uri = PAR_URN_PREFIX + new_handle()
    ttl = state.settings.par_ttl_seconds
    state.pushed_requests[request_uri] = PushedRequest(auth_request, state.now() + ttl)
    return JSONResponse(
        {"request_uri": request_uri, "expires_in": ttl}, status_code=201, headers=NO_STORE
    )


def take_pushed_request(state: SimState, params: dict[str, str]) -> AuthorizationRequest:
    """The pushed request named by `request_uri` at the authorization endpoint (RFC 9126 §4).

    It is single use (§4 recommends one-time use): taken out of the store whatever happens
    next. The `client_id` sent along must be the client that pushed it (§4).
    """
    pushed = state.pushed_requests.pop(params["request_uri"], None)
    if pushed is None or pushed.expires_at < state.now():
        raise AuthorizationError(
            "invalid_request_uri", "request_uri không tồn tại, đã dùng hoặc đã hết hạn."
        )
    if params.get("client_id") != pushed.request.client_id:
        raise AuthorizationError(
            "invalid_request", "client_id không khớp với yêu cầu đã gửi trước (PAR)."
        )
    return pushed.request


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, "/par", push_authorization_request, methods=["POST"])
    return router
