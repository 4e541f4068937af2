"""Request header fields are accepted only up to a total size (431), request bodies read only
up to a cap, JSON only up to a nesting depth, and no NUL character gets in anywhere.

Every route of the broker takes a small JSON or form body (a few hundred bytes; a logout token
a few kilobytes), so one cap (`VSSID_MAX_BODY_BYTES`) serves them all, with room for a route
that needs more in `ROUTE_BODY_LIMITS`. A body announced larger is answered 413 without a byte
of it being read; a body without a length is read until it passes the cap, then answered 413.
Deeply nested JSON is refused before any parser walks it (Python's would recurse until it
fails), 400 `invalid_request`. A NUL character (raw, `%00`, or JSON's `\u0000`) in the path,
the query or the body is refused the same way: no identifier, username or URL of ours holds
one, and PostgreSQL refuses it in text (stored in JSON, it broke every later read).

Checked by the one request middleware (`web.middleware.BrokerRequests`), before routing.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from vssid_broker.errors import DomainError, HeadersTooLarge, InputRefused, PayloadTooLarge
from vssid_broker.web.problems import respond

ROUTE_BODY_LIMITS: dict[str, int] = {}
"""Paths allowed a larger body than `VSSID_MAX_BODY_BYTES` (none today)."""


def json_depth_exceeds(body: bytes | bytearray, limit: int) -> bool:
    """True when arrays and objects nest deeper than `limit` (strings are skipped, so a
    bracket inside a string does not count)."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def has_nul(body: bytes | bytearray, content_type: bytes) -> bool:
    """A NUL as such, JSON-escaped, or percent-encoded in a form."""
    if b"\x00" in body or b"\\u0000" in body.lower():
        return True
    return b"urlencoded" in content_type and b"%00" in body


BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True)
class RequestLimits:
    """The limits every request passes, checked by the request middleware (`web.middleware`)
    before any route sees the request."""

    max_body_bytes: int
    max_header_bytes: int
    max_json_depth: int

    def refusal_of_head(self, scope: Scope) -> DomainError | None:
        """What is wrong with the header fields or the URL, if anything."""
        header_bytes = sum(len(name) + len(value) for name, value in scope["headers"])
        if header_bytes > self.max_header_bytes:
            return HeadersTooLarge(f"header fields over {self.max_header_bytes} bytes")
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            return InputRefused("NUL in the URL")
        return None

    async def read_body(self, scope: Scope, receive: Receive) -> bytes | DomainError | None:
        """The whole body, read up to the cap and checked; the refusal instead, or None when
        the client went away before sending it all."""
        cap = ROUTE_BODY_LIMITS.get(scope["path"], self.max_body_bytes)
        headers = dict(scope["headers"])
        announced = headers.get(b"content-length", b"").strip()
        if announced.isdigit() and int(announced) > cap:
            return PayloadTooLarge(f"body over {cap} bytes")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > cap:
                return PayloadTooLarge(f"body over {cap} bytes")
            if not message.get("more_body", False):
                break
        content_type = headers.get(b"content-type", b"")
        if has_nul(body, content_type):
            return InputRefused("NUL in the body")
        if b"json" in content_type and json_depth_exceeds(body, self.max_json_depth):
            return InputRefused(f"JSON nested deeper than {self.max_json_depth}")
        return bytes(body)


async def refuse(scope: Scope, receive: Receive, send: Send, error: DomainError) -> None:
    """Answer a request that broke a limit, and close the connection: the rest of its body
    is not read."""
    response = respond(
        Request(scope), status=error.status, code=error.code, message=error.message,
        detail=error.detail,
    )  # fmt: skip
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def replay(body: bytes, then: Receive) -> Receive:
    """The body read here, then whatever the connection says next (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive
