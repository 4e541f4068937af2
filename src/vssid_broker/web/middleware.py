"""The one request middleware: what every request passes through before and after its route.

In the order that matters, outermost first:

1. **the request id** (the caller's `X-Request-Id` when short and printable, else a new one),
   in `request.state` for the routes and in a context variable for log lines;
2. **the response headers**: the request id, `Cache-Control: no-store` unless the route says
   otherwise, the security headers (`security_headers`) — on every answer, refusals and 500s
   included;
3. **the request limits** (`web.request_limits`): header size, NUL in the URL, body cap, NUL
   in the body, JSON depth; a request over a limit is answered here and reaches no route;
4. **the revocation barrier** (PostgreSQL only): a request that ended sessions answers only once
   every broker process has forgotten them. Between the revoking transaction's commit and the
   response, the process sends a barrier through PostgreSQL and waits, at most
   `REVOCATION_WAIT_SECONDS`, until every listening process has acknowledged it, which each
   does after handling the revocation's own notification (`sessions/live_cache.py` states what
   remains). A request that revoked nothing waits for nothing;
5. **the error handlers** (`web.problems`): a domain error or an HTTP error raised by routing
   becomes its problem document or page; anything else becomes the 500 of the catch-all
   handler and is raised on to the server, which logs it;
6. **the request's metrics and access log line** (route template, status, duration), once the
   answer is sent.

One plain ASGI callable instead of a stack of eight (Starlette's and FastAPI's error, body-limit
and exit-stack layers around three of ours): each layer was a coroutine call and a closure over
`send` per request, together about a fifth of the CPU of a `/healthz` (docs/performance.md).
Tracing, when on, stays outside it: FastAPI wraps the whole application in its span.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, nullcontext
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from vssid_broker import metrics
from vssid_broker.config import Settings
from vssid_broker.logging_setup import request_id_var, request_scope_var
from vssid_broker.sessions.live_cache import (
    LiveSessionListener,
    answer_after_everyone_forgot,
    collecting_revocations,
)
from vssid_broker.web.request_limits import BODYLESS_METHODS, RequestLimits, refuse, replay

access_log = logging.getLogger("vssid_broker.access")

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
"""The catch-all handler: the 500 of an unexpected error."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # "same-origin": no URL leaks to other sites, yet our own form POSTs keep a real Origin.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})
"""The API browser (`web/docs.py`): Swagger UI from our own files (`/static/docs`), but it
styles its widgets inline, so its page alone allows inline styles and scripts; no other host."""
DOCS_SCRIPT_SOURCES = "'unsafe-inline'"


def content_security_policy(settings: Settings, *, also_from: str = "") -> str:
    """Scripts and styles only from our own files (no inline script, no `on…=` handler), no
    framing by anyone (clickjacking), forms posted only to us and to VNeID (RP-initiated
    logout posts its `id_token_hint` there)."""
    vneid = urlsplit(settings.vneid_issuer)
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self'{also_from}",
            f"style-src 'self'{also_from}",
            "img-src 'self' data: blob:",  # blob: the app demo's card image, fetched with a token
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action 'self' {vneid.scheme}://{vneid.netloc}",
            "frame-ancestors 'none'",
        )
    )


def security_headers(settings: Settings) -> dict[str, str]:
    """The headers of every response; HSTS (RFC 6797) when the public URL is https."""
    headers = SECURITY_HEADERS | {"Content-Security-Policy": content_security_policy(settings)}
    if settings.secure_cookies:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    return headers


def _raw(headers: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    )


def new_request_id() -> str:
    """16 hex digits. A request id names a request in logs and answers; it guards nothing, so
    it comes from the process's fast generator, not from the operating system's."""
    return f"{random.getrandbits(64):016x}"


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id when it is short and printable (it goes into logs), else new."""
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if 0 < len(incoming) <= 64 and incoming.isprintable():
                return incoming
            break
    return new_request_id()


class BrokerRequests:
    """Every HTTP request of the broker, around the router (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        exception_handlers: Mapping[Any, ExceptionHandler],
        status_handlers: Mapping[int, ExceptionHandler],
        error_handler: ErrorHandler,
        listener: LiveSessionListener | None = None,
    ) -> None:
        self.app = app
        self.access_log = settings.access_log
        self.limits = RequestLimits(
            max_body_bytes=settings.max_body_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_json_depth=settings.max_json_depth,
        )
        self.listener = listener
        self.handlers = (dict(exception_handlers), dict(status_handlers))
        self.error_handler = error_handler
        headers = security_headers(settings)
        self.headers = _raw(headers)
        docs_policy = content_security_policy(settings, also_from=f" {DOCS_SCRIPT_SOURCES}")
        self.docs_headers = _raw(headers | {"Content-Security-Policy": docs_policy})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope["headers"])
        # `request.state.request_id` for the routes; the context variable for log lines.
        scope.setdefault("state", {})["request_id"] = rid
        started, status, response_started = perf_counter(), 500, False
        own_headers = self.docs_headers if scope["path"] in DOCS_PATHS else self.headers
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        revocations = collecting_revocations() if self.listener is not None else nullcontext(None)

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                if committed:
                    assert self.listener is not None
                    await answer_after_everyone_forgot(self.listener, committed)
                status, response_started = message["status"], True
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() != b"x-request-id"
                ]
                present = {name.lower() for name, _ in headers}
                headers.append(rid_header)
                # Responses are personal unless a route says otherwise (the JWKS, static files).
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                # A route that sets its own policy keeps it: front-channel logout's CSP lets
                # VNeID (and only VNeID) frame it, so it gets no X-Frame-Options: DENY either.
                own_policy = b"content-security-policy" in present
                for name, value in own_headers:
                    if name not in present and not (own_policy and name == b"x-frame-options"):
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        token, scope_token = request_id_var.set(rid), request_scope_var.set(scope)
        try:
            with revocations as committed:
                await self._answer(scope, receive, send_with_headers)
        except Exception as error:
            if not response_started:
                response = await self.error_handler(Request(scope), error)
                await response(scope, receive, send_with_headers)
            # Raised on, so the server logs it (as Starlette's ServerErrorMiddleware does).
            raise
        finally:
            seconds = perf_counter() - started
            route = route_template(scope)
            metrics.http_request(route, scope["method"], status, seconds)
            if self.access_log:
                _log_access(scope, route, status, seconds)
            request_id_var.reset(token)
            request_scope_var.reset(scope_token)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.limits.refusal_of_head(scope)
        if refusal is None and scope["method"] not in BODYLESS_METHODS:
            body = await self.limits.read_body(scope, receive)
            if body is None:
                return  # the client went away
            if isinstance(body, bytes):
                receive = replay(body, receive)
            else:
                refusal = body
        if refusal is not None:
            await refuse(scope, receive, send, refusal)
            return
        # What Starlette's exception middleware and FastAPI's exit-stack middleware did: the
        # handlers for the routes (which apply them themselves) and for routing's own errors
        # (404, 405); the stack FastAPI closes uploaded files with.
        scope["starlette.exception_handlers"] = self.handlers
        async with AsyncExitStack() as files:
            scope["fastapi_middleware_astack"] = files
            await wrap_app_handling_exceptions(self.app, Request(scope, receive, send))(
                scope, receive, send
            )


def _log_access(scope: Scope, route: str, status: int, seconds: float) -> None:
    """One line per request: route template (no ids, no query string), status, the error
    code if the answer was a refusal (web/problems.py notes it), duration."""
    outcome = scope["state"].get("outcome", "ok" if status < 400 else str(status))
    duration_ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %s %s %.1f ms",
        scope["method"],
        route,
        status,
        outcome,
        duration_ms,
        extra={
            "method": scope["method"],
            "status": status,
            "outcome": outcome,
            "duration_ms": duration_ms,
        },
    )


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded, no ids), or "unmatched" for a 404."""
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")
