"""Logging with a request id on every line and a last-line filter against leaked identifiers;
text by default, JSON lines (python-json-logger) with `VSSID_LOG_FORMAT=json`.

Code never logs citizen IDs or tokens on purpose; the filter masks any 12-digit run and any
bearer-looking string that slips through, so a mistake does not become a data leak.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Mapping
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
request_scope_var: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "request_scope", default=None
)
"""The ASGI scope of the request being served: its route template is known only once routed."""

TWELVE_DIGITS = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")
SECRET_LIKE = re.compile(r"(?i)(bearer\s+|token=|code=|secret=|password=)[^\s&\"']+")


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        message = TWELVE_DIGITS.sub(r"\1******\2", message)
        message = SECRET_LIKE.sub(r"\1[redacted]", message)
        record.msg, record.args = message, None
        record.request_id = request_id_var.get()
        return True


class RouteFilter(logging.Filter):
    """Adds `route`: the matched route's template (no ids in it), "-" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = request_scope_var.get()
        route = getattr(scope.get("route"), "path", None) if scope else None
        record.route = route or (scope.get("path", "-") if scope else "-")
        return True


# JSON lines: these fields on every line, then whatever the call passed in `extra=`
# (outcome, duration_ms, channel...). Renamed to the names log pipelines expect.
JSON_FIELDS = "%(levelname)s %(name)s %(request_id)s %(route)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            JSON_FIELDS,
            rename_fields=JSON_RENAMES,
            timestamp="timestamp",  # ISO 8601 in UTC, with milliseconds
            json_ensure_ascii=False,
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def build_handler(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    # Redaction first: the formatter (text or JSON) only ever sees the redacted message.
    handler.addFilter(RedactingFilter())
    handler.addFilter(RouteFilter())
    handler.setFormatter(formatter(log_format))
    return handler


def configure(level: str = "INFO", log_format: str = "text") -> None:
    handler = build_handler(log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints query strings, which carry `code` and `state` on callbacks.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
