"""The OpenAPI document, made to say what the broker really answers.

FastAPI documents what it sees in the route signatures: 200 and its own 422, as plain JSON.
The broker also answers, for every operation, problems (`application/problem+json`, RFC 9457)
that come from outside the route: 400 from the edge checks (a NUL, JSON nested too deep), 413
from the body cap, 503 when the database cannot be reached, 429 from the rate limits, 401 from
the token checks. The token endpoints read their form (or JSON) bodies themselves, so their
bodies are described here too. `tests/test_openapi_contract.py` holds the document to the
answers with schemathesis.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable, `title` is for the person",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "additionalProperties": True,
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

EVERY_OPERATION = {
    400: "a NUL character or JSON nested too deep (`invalid_request`), or a refusal of the request",
    431: "the header fields are larger than `VSSID_MAX_HEADER_BYTES` (`headers_too_large`)",
    503: "the database cannot be reached (`service_unavailable`, with `Retry-After`)",
}
WITH_A_BODY = {
    413: "the body is larger than `VSSID_MAX_BODY_BYTES` (`payload_too_large`)",
    422: "a field is missing or invalid (`invalid_request`)",
}
NEEDS_A_TOKEN = {401: "missing, invalid or expired token (`invalid_token`, `invalid_client`)"}
RATE_LIMITED = {429: "a rate limit or the password lockout (`Retry-After` on rate limits)"}

OPERATIONS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/api/v1/auth/vneid/start"): RATE_LIMITED,
    ("post", "/api/v1/auth/vneid/complete"): RATE_LIMITED
    | {
        403: "level too low, account not active, link refused or under review",
        404: "no VssID account for this citizen ID (`vssid_account_required`)",
        502: "VNeID refused the broker's request (`vneid_request_refused`)",
    },
    ("post", "/api/v1/auth/vneid/prove"): RATE_LIMITED
    | {
        401: "wrong identifier or password (`invalid_credentials`)",
        403: "not a candidate of the case, or the account is not active",
        409: "already linked",
    },
    ("post", "/api/v1/auth/password"): RATE_LIMITED
    | {
        401: "wrong identifier or password (`invalid_credentials`)",
        403: "the account is not active",
    },
    ("post", "/api/v1/auth/token"): RATE_LIMITED,
    ("post", "/api/v1/auth/revoke"): RATE_LIMITED,
    ("post", "/api/v1/auth/introspect"): RATE_LIMITED | NEEDS_A_TOKEN,
    ("post", "/admin/api/v1/token"): RATE_LIMITED,
    ("delete", "/api/v1/me/sessions/{session_id}"): {404: "not a live session of this person"},
    ("get", "/admin/api/v1/cases/{case_id}"): {404: "no such case"},
    ("get", "/admin/api/v1/accounts/{account_id}/identities"): {404: "no such account"},
    ("post", "/admin/api/v1/cases/{case_id}/approve"): {404: "no such case"},
    ("post", "/admin/api/v1/cases/{case_id}/reject"): {404: "no such case"},
    ("post", "/admin/api/v1/accounts/{account_id}/identities/{link_id}/unlink"): {
        404: "no such link",
        409: "the link changed meanwhile",
    },
}
"""Answers particular to an operation, beyond those every operation has."""

TOKEN_PREFIXES = ("/api/v1/me", "/admin/api/v1/")

FORM_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/auth/token": {
        "type": "object",
        "required": ["grant_type", "refresh_token"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["refresh_token"]},
            "refresh_token": {"type": "string", "minLength": 1},
        },
    },
    "/api/v1/auth/revoke": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "minLength": 1}},
    },
    "/api/v1/auth/introspect": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "minLength": 1}},
    },
}
"""RFC 6749 / 7009 / 7662 bodies: form-encoded, or the same fields as JSON."""


EMPTY_SUCCESS = {("post", "/api/v1/auth/revoke")}
"""RFC 7009 §2.2: revocation answers 200 with no body."""


def install(app: FastAPI, *, documented_order: list[str]) -> None:
    """`documented_order`: the paths in the order the document lists them (the routers'
    order, by caller), whatever order the router tries its routes in."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = describe_problems(generate())
            paths = document["paths"]
            order = {path: place for place, path in enumerate(dict.fromkeys(documented_order))}
            document["paths"] = dict(
                sorted(paths.items(), key=lambda item: order.get(item[0], len(order)))
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def describe_problems(document: dict[str, Any]) -> dict[str, Any]:
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in FORM_BODIES:
                schema = FORM_BODIES[path]
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": schema},
                        "application/json": {"schema": schema},
                    },
                }
            if (method, path) in EMPTY_SUCCESS:
                operation["responses"]["200"].pop("content", None)
            answers = dict(EVERY_OPERATION)
            if "requestBody" in operation:
                answers |= WITH_A_BODY
            if path.startswith(TOKEN_PREFIXES) and path != "/admin/api/v1/token":
                answers |= NEEDS_A_TOKEN
            answers |= OPERATIONS.get((method, path), {})
            responses = operation.setdefault("responses", {})
            for status, description in answers.items():
                responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                if not status.startswith("2"):
                    response["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
    return document
