"""Logging with a request id on every line and a last-line filter against leaked identifiers.

Code never logs citizen IDs or tokens on purpose; the filter masks any 12-digit run and any
bearer-looking string that slips through, so a mistake does not become a data leak.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

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


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log prints query strings, which carry `code` and `state` on callbacks.
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
