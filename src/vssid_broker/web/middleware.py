"""The request id and the security headers every response carries, and the request's metrics
(route template, status, duration), as a plain ASGI middleware.

Plain ASGI rather than `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware` runs the
app in a task group with memory streams, about an eighth of the CPU of a small request in the
profiles of docs/performance.md. This one only wraps `send`.
"""

from __future__ import annotations

import logging
import secrets
from time import perf_counter
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vssid_broker import metrics
from vssid_broker.config import Settings
from vssid_broker.logging_setup import request_id_var, request_scope_var

access_log = logging.getLogger("vssid_broker.access")

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


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id when it is short and printable (it goes into logs), else new."""
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if 0 < len(incoming) <= 64 and incoming.isprintable():
                return incoming
            break
    return secrets.token_hex(8)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        self.headers = security_headers(settings)
        self.docs_headers = self.headers | {
            "Content-Security-Policy": content_security_policy(
                settings, also_from=f" {DOCS_SCRIPT_SOURCES}"
            )
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope["headers"])
        # `request.state.request_id` for the routes; the context variable for log lines.
        scope.setdefault("state", {})["request_id"] = rid
        started, status = perf_counter(), 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = rid
                # Responses are personal unless a route says otherwise (the JWKS, static files).
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                docs = scope["path"] in DOCS_PATHS
                # A route that sets its own policy keeps it: front-channel logout's CSP lets
                # VNeID (and only VNeID) frame it, so it gets no X-Frame-Options: DENY either.
                own_policy = "content-security-policy" in headers
                for name, value in (self.docs_headers if docs else self.headers).items():
                    if name not in headers and not (own_policy and name == "X-Frame-Options"):
                        headers[name] = value
            await send(message)

        token, scope_token = request_id_var.set(rid), request_scope_var.set(scope)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = perf_counter() - started
            route = route_template(scope)
            metrics.http_request(route, scope["method"], status, seconds)
            if self.access_log:
                _log_access(scope, route, status, seconds)
            request_id_var.reset(token)
            request_scope_var.reset(scope_token)


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
