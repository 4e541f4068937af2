"""The two login flows, driven over real HTTP the way the browser and the app drive them."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from vssid_broker.vneid_sim.driver import sign_in_at_vneid

APP_REDIRECT_URI = "vn.gov.baohiemxahoi.vssid:/oauth/vneid"


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def csrf_token_of(page: str) -> str:
    """The session's CSRF token, as the account page's forms carry it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "page has no CSRF token"
    return found.group(1)


async def browser_login(browser: httpx.AsyncClient, broker: str, citizen_id: str) -> httpx.Response:
    """Click the login button, sign in at VNeID, and return the broker's callback response."""
    start = await browser.get(f"{broker}/auth/vneid/login")
    assert start.status_code == 302, start.text
    back_to_broker = await sign_in_at_vneid(browser, start.headers["location"], citizen_id)
    return await outcome_page(browser, await browser.get(back_to_broker))


async def outcome_page(browser: httpx.AsyncClient, callback: httpx.Response) -> httpx.Response:
    """The page a refused login lands on (the callback answers 303 to it), else `callback`."""
    location = callback.headers.get("location", "")
    if callback.status_code == 303 and location.startswith("/auth/vneid/outcome?"):
        return await browser.get(str(callback.url.join(location)))
    return callback


@dataclass
class AppPkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> AppPkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass
class AppRedirect:
    """What the app receives on its redirect URI after VNeID."""

    params: dict[str, str]
    pkce: AppPkce
    location: str = ""
    """The redirect as VNeID wrote it (its raw query keeps a "+" a "+")."""


async def app_until_redirect(
    client: httpx.AsyncClient, broker: str, citizen_id: str
) -> AppRedirect:
    pkce = AppPkce.new()
    start = await client.post(
        f"{broker}/api/v1/auth/vneid/start",
        json={
            "redirect_uri": APP_REDIRECT_URI,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        },
    )
    assert start.status_code == 200, start.text
    location = await sign_in_at_vneid(client, start.json()["authorization_url"], citizen_id)
    assert location.startswith(APP_REDIRECT_URI), location
    return AppRedirect(query_of(location), pkce, location)


async def app_complete(
    client: httpx.AsyncClient, broker: str, redirect: AppRedirect, **overrides: str
) -> httpx.Response:
    # VNeID sent back a code or, having refused before consent, its error: the app forwards it.
    answer = {"error": redirect.params["error"]} if "error" in redirect.params else {}
    body = {
        "code": redirect.params.get("code", ""),
        **answer,
        "state": redirect.params.get("state", ""),
        "iss": redirect.params.get("iss", ""),
        "code_verifier": redirect.pkce.verifier,
        **overrides,
    }
    if answer and "code" not in overrides:
        del body["code"]
    return await client.post(f"{broker}/api/v1/auth/vneid/complete", json=body)
