"""One place that turns errors into responses: RFC 9457 problem+json for APIs, a page for people.

Unexpected errors are logged with the request id and answered without any internal detail.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vssid_broker import metrics
from vssid_broker.db import database_unreachable
from vssid_broker.errors import DomainError, ServiceUnavailable, StoredDataRefused
from vssid_broker.errors.tokens import InvalidDpopProof
from vssid_broker.logging_setup import OncePerInterval
from vssid_broker.sealing import SealedValueRefused
from vssid_broker.web.rendering import templates

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/admin/api/", "/.well-known/")

DATABASE_OUTAGE_LOG_SECONDS = 30.0
"""During a database outage, one log line per this many seconds (with the count in between)."""


HTTP_MESSAGES = {
    404: "Không tìm thấy trang bạn yêu cầu.",
    405: "Phương thức không được hỗ trợ cho địa chỉ này.",
}


def page_heading(status: int) -> str:
    """The error page's heading and title: by kind of failure, so tabs and history differ."""
    if status == 404:
        return "Không tìm thấy trang"
    if status >= 500:
        return "Dịch vụ tạm thời gián đoạn"
    return "Không thể thực hiện yêu cầu"


def wants_problem_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def respond(
    request: Request,
    *,
    status: int,
    code: str,
    message: str,
    detail: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    request_id = request_id_of(request)
    request.state.outcome = code  # for the access log line
    if wants_problem_json(request):
        body = {
            "type": f"https://vssid-broker.readthedocs.io/errors/{code}",
            "title": message,
            "status": status,
            "code": code,
            "detail": detail or message,
            "request_id": request_id,
        } | (extensions or {})
        return JSONResponse(body, status_code=status, media_type="application/problem+json")
    page: HTMLResponse = templates.TemplateResponse(
        request,
        "error.html",
        {
            "message": message,
            "code": code,
            "request_id": request_id,
            "heading": page_heading(status),
            # A staff console page goes back to the console, a person's page to the login.
            "home": "/admin" if request.url.path.startswith("/admin") else "/",
        },
        status_code=status,
    )
    return page


def methods_of(request: Request) -> set[str]:
    path = request.url.path
    return {
        method
        for route in request.app.router.routes
        if isinstance(route, APIRoute) and route.path_regex.match(path)
        for method in route.methods or ()
    }


def install(app: FastAPI, *, database_retry_after: int) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        metrics.refusal(error.code)
        if isinstance(error, InvalidDpopProof):
            metrics.DPOP_REFUSALS.inc()
        response = respond(
            request,
            status=error.status,
            code=error.code,
            message=error.message,
            detail=error.detail,
            extensions=error.extensions,
        )
        response.headers.update(error.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in error.errors())
        return respond(
            request,
            status=422,
            code="invalid_request",
            message="Yêu cầu thiếu thông tin hoặc thông tin không hợp lệ.",
            detail=f"invalid or missing fields: {fields}" if fields else None,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        response = respond(
            request,
            status=error.status_code,
            code=f"http_{error.status_code}",
            message=HTTP_MESSAGES.get(error.status_code, "Yêu cầu không thể được xử lý."),
        )
        response.headers.update(error.headers or {})
        if error.status_code == 405:
            # RFC 9110 §15.5.6: every method of the resource, not only the first route's.
            response.headers["Allow"] = ", ".join(sorted(methods_of(request)))
        return response

    @app.exception_handler(SealedValueRefused)
    async def sealed_value_refused(request: Request, error: SealedValueRefused) -> Response:
        """A stored value that does not open for its row (copied there, or altered): one log
        line naming the place and row id (never the value, never a traceback), and a defined
        error instead of the record."""
        log.error("sealed value refused request_id=%s: %s", request_id_of(request), error)
        return await domain_error(request, StoredDataRefused())

    outage_log = OncePerInterval(DATABASE_OUTAGE_LOG_SECONDS)

    async def database_error(request: Request, error: Exception) -> Response:
        """The database cannot be reached (down, restarting, connections killed): 503 with
        `Retry-After`, logged once per interval, not once per request. SQLAlchemy replaces
        the broken connections, so requests succeed again by themselves once it is back."""
        if not database_unreachable(error):
            return await unexpected(request, error)
        if outage_log.due():
            log.error(
                "database unreachable (%s); answering 503 (%d more since the last line)",
                type(error.__cause__ or error).__name__,
                outage_log.take_suppressed(),
            )
        return await domain_error(
            request, ServiceUnavailable("database unreachable", retry_after=database_retry_after)
        )

    # Registered by class (not as the catch-all below), so an outage is answered and ends
    # here instead of also being re-raised to the server, which logs each one in full.
    for error_class in (DBAPIError, SQLAlchemyTimeoutError, OSError):
        app.add_exception_handler(error_class, database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error request_id=%s", request_id_of(request))
        return respond(
            request,
            status=500,
            code="internal_error",
            message="Hệ thống đang gặp sự cố. Vui lòng thử lại sau ít phút.",
        )
