"""What the simulator's endpoints share: reading parameters as OAuth requires, the JSON error
body, client authentication, and `Refused`, the way a check stops a request.

Every endpoint module reads as a short pipeline of named checks, in the order the spec
applies them. A check either returns what the next step needs or raises `Refused` with the
complete answer (a JSON error, an error page, a redirect). `create_app` installs
`answer_refusal`, so that answer is exactly what the client receives; no endpoint needs its
own try/except for the early exits.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from .client_auth import ClientAuthError, authenticate_client
from .config import ClientRegistration
from .state import SimState

# RFC 6749 §5.1: token responses (and anything else carrying credentials) must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
LOCKED_MESSAGE = "Tài khoản định danh điện tử đã bị khoá"

# An endpoint is a plain function of the simulator state and the request.
Endpoint = Callable[[SimState, Request], Awaitable[Response]]


class Refused(Exception):
    """A check refused the request; `response` is the whole answer to send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def answer_refusal(request: Request, exc: Exception) -> Response:
    """The exception handler `create_app` installs for `Refused`."""
    if not isinstance(exc, Refused):
        raise exc
    return exc.response


class DuplicateParameterError(ValueError):
    pass


def single_valued(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Request parameters as a dict; OAuth forbids repeating a parameter (RFC 6749 §3.1)."""
    params: dict[str, str] = {}
    for name, value in items:
        if not isinstance(value, str):
            continue
        if name in params:
            raise DuplicateParameterError(name)
        params[name] = value
    return params


def oauth_error(error: str, description: str, status_code: int = 400) -> JSONResponse:
    """The error response of the token-style endpoints (RFC 6749 §5.2)."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status_code,
        headers=NO_STORE,
    )


def refuse(error: str, description: str, status_code: int = 400) -> Refused:
    """`Refused` carrying an RFC 6749 §5.2 error body, for `raise refuse(...)`."""
    return Refused(oauth_error(error, description, status_code))


def simulated_server_error() -> PlainTextResponse:
    """The plain 500 that the *_http_500 faults answer with, as a broken server would."""
    return PlainTextResponse("Internal Server Error", status_code=500)


def s256(verifier: str) -> str:
    """BASE64URL(SHA256(code_verifier)), the S256 code challenge (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def single_valued_form(request: Request) -> dict[str, str]:
    """The form body; a repeated parameter is invalid_request (RFC 6749 §3.2)."""
    try:
        return single_valued((await request.form()).multi_items())
    except DuplicateParameterError as error:
        raise refuse("invalid_request", f"repeated parameter {error}") from error


async def authenticated_client(
    state: SimState, request: Request, form: dict[str, str], path: str
) -> ClientRegistration:
    """The client that authenticated at the endpoint `path` (RFC 6749 §2.3, RFC 7523 §3).

    invalid_client is a 401, with a Basic challenge when Basic was tried (RFC 6749 §5.2).
    """
    try:
        return await authenticate_client(
            state, form, request.headers.get("authorization"), state.endpoint(path)
        )
    except ClientAuthError as error:
        response = oauth_error(
            error.error, error.description, 401 if error.error == "invalid_client" else 400
        )
        if error.basic_challenge:
            response.headers["WWW-Authenticate"] = 'Basic realm="vneid-sim"'
        raise Refused(response) from error


def add_endpoint(
    router: APIRouter, state: SimState, path: str, endpoint: Endpoint, methods: list[str]
) -> None:
    """Serve `path` with `endpoint(state, request)`. Binding the state here keeps each
    endpoint a module-level function that can be read (and called) on its own."""

    async def serve(request: Request) -> Response:
        return await endpoint(state, request)

    router.add_api_route(path, serve, methods=methods, name=endpoint.__name__)
