"""The authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1): validate the
request, from the query string or from a pushed request (RFC 9126 §4), then hand the person to
the login pages. The parameter rules themselves are in `authorization.py`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from .authorization import AuthorizationError, parse_authorization_request, response_redirect
from .login_pages import SIGN_IN_COOKIE, begin_login
from .pages import error_page
from .par import take_pushed_request
from .protocol import DuplicateParameterError, Refused, add_endpoint, single_valued
from .state import AuthorizationRequest, SimState


async def authorize(state: SimState, request: Request) -> RedirectResponse:
    state.purge_expired()
    params = query_parameters(state, request)
    auth_request = validated_request(state, params)
    return begin_login(state, auth_request, request.cookies.get(SIGN_IN_COOKIE))


def query_parameters(state: SimState, request: Request) -> dict[str, str]:
    """RFC 6749 §3.1: a parameter must not be repeated. Nothing about the client is checked
    yet, so the refusal is a page for the person, not a redirect."""
    try:
        return single_valued(request.query_params.multi_items())
    except DuplicateParameterError as error:
        raise Refused(
            error_page(
                state.settings.issuer,
                "Yêu cầu không hợp lệ",
                f"Tham số {error} bị lặp lại (repeated parameter).",
            )
        ) from error


def validated_request(state: SimState, params: dict[str, str]) -> AuthorizationRequest:
    """The request to sign the person in for: the pushed one when `request_uri` is given
    (RFC 9126 §4), otherwise the query string's, checked rule by rule."""
    try:
        if "request_uri" in params:
            return take_pushed_request(state, params)
        return parse_authorization_request(state, params)
    except AuthorizationError as error:
        raise Refused(refusal(state, error)) from error


def refusal(state: SimState, error: AuthorizationError) -> Response:
    """RFC 6749 §4.1.2.1: while the client or its redirect URI is unverified the error is
    shown to the person and never redirected; once both are good it goes back to the client."""
    if error.redirect_uri is None:
        return error_page(
            state.settings.issuer,
            "Yêu cầu đăng nhập không hợp lệ",
            error.description,
            detail=f"Mã lỗi: {error.error}. Không chuyển hướng về ứng dụng vì không "
            "xác minh được ứng dụng hoặc địa chỉ chuyển hướng.",
        )
    location = response_redirect(
        state,
        error.redirect_uri,
        error.state,
        {"error": error.error, "error_description": error.description},
    )
    return RedirectResponse(location, status_code=302)


def routes(state: SimState) -> APIRouter:
    router = APIRouter()
    add_endpoint(router, state, "/authorize", authorize, methods=["GET"])
    return router
