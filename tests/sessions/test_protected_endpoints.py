"""Every protected endpoint refuses tampered, expired, wrong-audience, wrong-issuer, untyped,
foreign-key and `alg: none` access tokens, and accepts the genuine one."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from tests.conftest import Stack
from tests.sessions.test_refresh import signed_in_app
from tests.support.http import AsyncClient

PROTECTED = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/me/insurance"),
    ("GET", "/api/v1/me/sessions"),
    ("DELETE", "/api/v1/me/sessions/00000000-0000-4000-8000-000000000000"),
    ("DELETE", "/api/v1/me/sessions"),
]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parsed = jws.extract_compact(token.encode())
    return dict(parsed.protected), json.loads(parsed.payload)


async def resign(stack: Stack, token: str, **changes: Any) -> str:
    """The genuine token's claims, changed, signed by the broker's own current key."""
    header, claims = claims_of(token)
    header_changes = changes.pop("header", {})
    async with stack.db() as session:
        key = await stack.ctx.keys.active(session, stack.clock())
    return jwt.encode({**header, **header_changes}, {**claims, **changes}, key.private)


async def tampered(stack: Stack, token: str) -> str:
    header, claims = token.split(".")[0], claims_of(token)[1]
    other_account = {**claims, "sub": str(int(claims["sub"]) + 1)}
    return f"{header}.{_b64(other_account)}.{token.split('.')[2]}"


async def alg_none(stack: Stack, token: str) -> str:
    header, claims = claims_of(token)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jws.serialize_compact(
            {**header, "alg": "none"}, json.dumps(claims), None, algorithms=["none"]
        )


async def foreign_key(stack: Stack, token: str) -> str:
    header, claims = claims_of(token)
    return jwt.encode(header, claims, ECKey.generate_key("P-256"), algorithms=["ES256"])


async def wrong_audience(stack: Stack, token: str) -> str:
    return await resign(stack, token, aud="another-service")


async def wrong_issuer(stack: Stack, token: str) -> str:
    return await resign(stack, token, iss="https://evil.example")


async def not_an_access_token(stack: Stack, token: str) -> str:
    return await resign(stack, token, header={"typ": "JWT"})


async def expired(stack: Stack, token: str) -> str:
    stack.clock.advance(stack.settings.access_token_ttl_seconds + 1)
    return token


Forgery = Callable[[Stack, str], Awaitable[str]]
BAD_TOKENS: list[Forgery] = [
    tampered,
    alg_none,
    foreign_key,
    wrong_audience,
    wrong_issuer,
    not_an_access_token,
    expired,
]


async def call(app: httpx.AsyncClient, stack: Stack, method: str, path: str, token: str) -> int:
    response = await app.request(
        method, f"{stack.broker}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code == 401:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith("Bearer")
    return response.status_code


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("forge", BAD_TOKENS, ids=lambda forge: forge.__name__)
async def test_bad_token_is_refused(stack: Stack, method: str, path: str, forge: Forgery) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        bad = await forge(stack, tokens["access_token"])
        assert await call(app, stack, method, path, bad) == 401
    if method == "DELETE":  # and it ended nothing
        async with AsyncClient() as app:
            refreshed = await app.post(
                f"{stack.broker}/api/v1/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            )
        assert refreshed.status_code == 200


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_genuine_token_is_accepted(stack: Stack, method: str, path: str) -> None:
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        status = await call(app, stack, method, path, tokens["access_token"])
    # The unknown session id is a 404 for its owner; everything else succeeds.
    assert status in ((404,) if path.endswith("000000000000") else (200, 204))


async def test_re_signing_keeps_a_token_valid(stack: Stack) -> None:
    """The forgeries above fail for their one change, not because re-signing breaks tokens."""
    async with AsyncClient() as app:
        tokens = await signed_in_app(app, stack)
        same = await resign(stack, tokens["access_token"])
        assert await call(app, stack, "GET", "/api/v1/me", same) == 200
