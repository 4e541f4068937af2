"""Small helpers the simulator tests share: PKCE, authorization URLs, code exchange."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jws

from vssid_broker.vneid_sim.driver import sign_in_at_vneid

DEMO_CLIENT_ID = "vssid-broker"
DEMO_APP_CLIENT_ID = "vssid-broker-app"
FULL_SCOPE = "openid profile citizen_id"
DEMO_SECRET = "vssid-broker-demo-secret"
# A loopback redirect on another port than the registered 8000 (RFC 8252 §7.3).
REDIRECT_URI = "http://127.0.0.1:51234/auth/vneid/callback"
AN = "001085012345"  # level 2, happy path
BINH = "079190123456"  # level 1
GIANG = "038192003344"  # locked


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorization_url(base_url: str, challenge: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": FULL_SCOPE,
        "state": "state-" + secrets.token_hex(4),
        "nonce": "nonce-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "acr_values": "LoA2",
    }
    params.update(overrides)
    return base_url + "/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


async def shown(http: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """The page a browser would show: the simulator answers each form (and the authorization
    request) with a 303 to its own page of the next step, which is followed here; a redirect
    to the client is not."""
    for _ in range(3):
        location = response.headers.get("location", "")
        origin = urlsplit(str(response.url))
        if response.status_code != 303 or not location.startswith(
            f"{origin.scheme}://{origin.netloc}/"
        ):
            break
        response = await http.get(location)
    return response


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWS without checking it, to inspect deliberate defects."""
    header_segment = token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_segment + "=" * (-len(header_segment) % 4)))
    if header.get("alg") == "none":
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    else:
        claims = json.loads(jws.extract_compact(token.encode()).payload)
    return header, claims


async def code_for(
    http: httpx.AsyncClient, base_url: str, citizen_id: str = AN, **overrides: str | None
) -> tuple[str, str, dict[str, str]]:
    """Sign in and return (code, verifier, redirect query)."""
    verifier, challenge = pkce_pair()
    location = await sign_in_at_vneid(
        http, authorization_url(base_url, challenge, **overrides), citizen_id
    )
    params = query(location)
    assert "code" in params, params
    return params["code"], verifier, params


async def exchange(
    http: httpx.AsyncClient,
    base_url: str,
    code: str,
    verifier: str,
    redirect_uri: str = REDIRECT_URI,
    secret: str = DEMO_SECRET,
) -> httpx.Response:
    return await http.post(
        base_url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        },
        auth=(DEMO_CLIENT_ID, secret),
    )


async def tokens_for(
    http: httpx.AsyncClient, base_url: str, citizen_id: str = AN, **overrides: str | None
) -> dict[str, Any]:
    code, verifier, _ = await code_for(http, base_url, citizen_id, **overrides)
    response = await exchange(http, base_url, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
