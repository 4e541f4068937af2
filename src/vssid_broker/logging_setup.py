"""Logging with a request id on every line and a last-line guard against leaked identifiers;
text by default, JSON lines (python-json-logger) with `VSSID_LOG_FORMAT=json`.

Code never logs citizen IDs or tokens on purpose, and the database engine never puts query
parameters into its errors (`hide_parameters`, `db.create_engine`). The guard masks what slips
through anyway, in the message *and* in tracebacks (an exception's text carries whatever it
was given): any 12-digit run (a citizen ID), any 10-digit run (a BHXH code, a phone number),
8-digit runs (VNeID's YYYYMMDD birth dates), bearer/DPoP credentials, and the values of
credential parameters in URLs and forms (`?code=`, `&state=`, `password=`, ...). A database
error's text is never logged at all, in a message or a traceback: only its kind, SQLSTATE and
constraint name (`describe_database_error`), since PostgreSQL quotes the refused row in it
(VNeID subjects, names, birth dates) and SQLAlchemy adds the statement's parameters.

It leaves readable what operators need: a refusal's error code (`code=vneid_error` in a log
line is not a URL parameter), request ids, paths, counts.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sqlite3
import time
import traceback
from collections.abc import Mapping
from typing import IO, Any

from opentelemetry import trace  # the API only (a FastAPI dependency); no-op without the SDK
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import exc as sa_exc

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
request_scope_var: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "request_scope", default=None
)
"""The ASGI scope of the request being served: its route template is known only once routed."""

TWELVE_DIGITS = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")
TEN_DIGITS = re.compile(r"(?<!\d)(\d{2})\d{8}(?!\d)")
EIGHT_DIGITS = re.compile(r"(?<!\w)\d{8}(?!\w)")  # alone: not inside a hex request id
CREDENTIAL_PARAMETERS = (
    "code|state|nonce|token|access_token|refresh_token|id_token|id_token_hint|logout_token"
    "|code_verifier|client_secret|client_assertion|password|passcode|otp|proof_ticket|ticket"
    "|csrf_token|secret"
)
URL_PARAMETER = re.compile(rf"(?i)([?&](?:{CREDENTIAL_PARAMETERS})=)[^&\s\"'#]+")
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:password|passcode|client_secret|secret|otp|refresh_token|access_token|id_token)"
    r"[\"']?\s*[=:]\s*[\"']?)[^\s&\"',}]+"
)
AUTHORIZATION = re.compile(r"(?i)\b((?:bearer|dpop)\s+)[A-Za-z0-9\-._~+/]+=*")
JWT_LIKE = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = URL_PARAMETER.sub(r"\1[redacted]", text)
    text = SECRET_ASSIGNMENT.sub(r"\1[redacted]", text)
    text = AUTHORIZATION.sub(r"\1[redacted]", text)
    text = JWT_LIKE.sub("[jwt redacted]", text)
    text = TWELVE_DIGITS.sub(r"\1******\2", text)
    text = TEN_DIGITS.sub(r"\1********", text)
    return EIGHT_DIGITS.sub("********", text)


DATABASE_ERROR_MODULES = ("asyncpg", "sqlite3", "aiosqlite", "psycopg")


def is_database_error(error: BaseException) -> bool:
    """A database's error, or SQLAlchemy's wrapping of one: its text carries the row it
    refused (PostgreSQL's `DETAIL: Failing row contains (…)`, `Key (subject)=(…)`) and, from
    SQLAlchemy, the statement's parameters."""
    if isinstance(error, sa_exc.StatementError):
        return True
    return type(error).__module__.split(".")[0] in DATABASE_ERROR_MODULES


def describe_database_error(error: BaseException) -> str:
    """What a log may say of a database error: its kind, PostgreSQL's SQLSTATE and the
    constraint's name, never its message's values, detail or parameters. SQLite's messages
    name only tables and columns ("UNIQUE constraint failed: t.c"), so its first line stays."""
    driver_error = error.orig if isinstance(error, sa_exc.StatementError) else error
    parts = [type(error).__name__]
    sqlstate = getattr(driver_error, "sqlstate", None)
    if sqlstate:
        parts.append(f"sqlstate={sqlstate}")
        cause = getattr(driver_error, "__cause__", None) or driver_error
        for name in ("table_name", "constraint_name"):
            if value := getattr(cause, name, None) or getattr(driver_error, name, None):
                parts.append(f"{name.removesuffix('_name')}={value}")
    elif isinstance(driver_error, sqlite3.Error) and driver_error.args:
        parts.append(redact(str(driver_error.args[0]).splitlines()[0]))
    return "database error: " + " ".join(parts)


def _loggable(value: object) -> object:
    return (
        describe_database_error(value)
        if isinstance(value, BaseException) and (is_database_error(value))
        else value
    )


def format_exception_safely(ei: Any) -> str:
    """Python's traceback text, except that a database error's own text (anywhere in the chain
    of causes and contexts) is replaced by `describe_database_error`; then redacted."""
    _, error, _ = ei
    if error is None:
        return "".join(traceback.format_exception(*ei)).rstrip("\n")
    return redact("".join(_chain_lines(error, set())).rstrip("\n"))


def _chain_lines(error: BaseException, seen: set[int]) -> list[str]:
    seen.add(id(error))
    lines: list[str] = []
    cause, context = error.__cause__, error.__context__
    if cause is not None and id(cause) not in seen:
        lines += _chain_lines(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not error.__suppress_context__ and id(context) not in seen:
        lines += _chain_lines(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if error.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(error.__traceback__)
    if is_database_error(error):
        lines.append(f"{type(error).__module__}.{type(error).__qualname__}: ")
        lines.append(describe_database_error(error) + "\n")
    else:
        lines += traceback.format_exception_only(type(error), error)
    return lines


class RedactingFilter(logging.Filter):
    """Redacts the message of every record and stamps it with the request id. A database
    error passed as an argument is logged as its description only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_loggable(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _loggable(arg) for key, arg in record.args.items()}
        if isinstance(record.msg, BaseException) and is_database_error(record.msg):
            record.msg = describe_database_error(record.msg)
        record.msg, record.args = redact(record.getMessage()), None
        record.request_id = request_id_var.get()
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the traceback and stack text too, which the filter never sees."""

    def format(self, record: logging.LogRecord) -> str:
        # Another handler (a test's capture, a second stream) may have formatted the traceback
        # first and cached its unguarded text on the record: always make our own.
        record.exc_text = None
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        return format_exception_safely(ei)

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))


class RedactingJsonFormatter(JsonFormatter):
    """The JSON lines' `exc_info` and `stack_info` fields, redacted like the text format's."""

    def formatException(self, ei: Any) -> str:
        return format_exception_safely(ei)

    def formatStack(self, stack_info: str) -> str:
        return redact(str(super().formatStack(stack_info)))


class RouteFilter(logging.Filter):
    """Adds `route`: the matched route's template (no ids in it), "-" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = request_scope_var.get()
        route = getattr(scope.get("route"), "path", None) if scope else None
        record.route = route or (scope.get("path", "-") if scope else "-")
        return True


class TraceFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (W3C hex, as trace back ends show them) while a span is
    active, so a log line leads to its trace; absent otherwise (tracing off: no span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return True


# JSON lines: these fields on every line, then whatever the call passed in `extra=`
# (outcome, duration_ms, channel...). Renamed to the names log pipelines expect.
JSON_FIELDS = "%(levelname)s %(name)s %(request_id)s %(route)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return RedactingJsonFormatter(
            JSON_FIELDS,
            rename_fields=JSON_RENAMES,
            timestamp="timestamp",  # ISO 8601 in UTC, with milliseconds
            json_ensure_ascii=False,
        )
    return RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def build_handler(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    # Redaction first: the formatter (text or JSON) only ever sees the redacted message.
    handler.addFilter(RedactingFilter())
    handler.addFilter(RouteFilter())
    handler.addFilter(TraceFilter())
    handler.setFormatter(formatter(log_format))
    return handler


def configure(level: str = "INFO", log_format: str = "text") -> None:
    root = logging.getLogger()
    root.handlers[:] = [build_handler(log_format)]
    root.setLevel(level)
    guard_library_loggers()


def guard_library_loggers() -> None:
    """Libraries that would log personal data at DEBUG are held at WARNING whatever the level:
    SQLAlchemy's echo prints result rows (names, birth dates), httpx/httpcore print requests
    to VNeID with their form bodies' sizes and headers."""
    for name in ("sqlalchemy", "httpcore", "hpack", "aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's access log prints query strings, which carry `code` and `state` on callbacks:
    # its lines go through the root handler and its guard like every other.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class OncePerInterval:
    """Says when a recurring condition (the database or the rate-limit storage unreachable) is
    due to be logged again: once per `seconds`, not once per request, so an outage under load
    is a few lines instead of a flood."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._last = float("-inf")
        self.suppressed = 0
        """Occurrences not logged since the last line."""

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self._seconds:
            self._last = now
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count
