"""Every response names its request and carries the security headers; logs use the same id."""

from __future__ import annotations

import re
from pathlib import Path

import vssid_broker.web
from tests.conftest import Stack
from tests.support.http import AsyncClient


async def test_an_incoming_request_id_is_kept_and_a_bad_one_replaced(stack: Stack) -> None:
    async with AsyncClient(base_url=stack.broker) as client:
        kept = await client.get("/healthz", headers={"X-Request-Id": "app-7f3a"})
        replaced = await client.get("/healthz", headers={"X-Request-Id": "x" * 65})
        fresh = await client.get("/healthz")
    assert kept.headers["x-request-id"] == "app-7f3a"
    assert replaced.headers["x-request-id"] != "x" * 65
    assert len(replaced.headers["x-request-id"]) == 16
    assert len(fresh.headers["x-request-id"]) == 16
    assert fresh.headers["x-request-id"] != replaced.headers["x-request-id"]


async def test_security_headers_on_pages_apis_and_errors(stack: Stack) -> None:
    async with AsyncClient(base_url=stack.broker) as client:
        responses = [
            await client.get("/"),
            await client.get("/api/v1/me"),  # 401 problem+json
            await client.get("/no-such-page"),
        ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-request-id"]
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy
        assert "strict-transport-security" not in response.headers  # http on loopback


async def test_the_public_key_set_stays_cacheable(stack: Stack) -> None:
    async with AsyncClient(base_url=stack.broker) as client:
        response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hsts_when_the_public_url_is_https(stack: Stack) -> None:
    with stack.broker_with(public_base_url="https://127.0.0.1:8443") as broker:
        async with AsyncClient() as client:
            response = await client.get(f"{broker}/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_no_template_has_an_inline_script_or_handler() -> None:
    """Scripts are files under web/static/: the policy allows no inline script."""
    templates = Path(vssid_broker.web.__file__).parent / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name


async def test_the_api_browser_loads_nothing_from_another_host(stack: Stack) -> None:
    # /docs is served from the broker's own files: its wider policy (inline styles for Swagger
    # UI's widgets) names no other host, and framing stays refused.
    async with AsyncClient(base_url=stack.broker) as client:
        docs = await client.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "http" not in policy.replace(stack.sim, "")  # VNeID is only a form target
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
