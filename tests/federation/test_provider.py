"""How the provider client reacts to single responses (the network is mocked with respx, which
intercepts httpcore's connection pool, the broker's outbound client)."""

from __future__ import annotations

from typing import Any

import httpcore
import httpx
import pytest
import respx
from joserfc.jwk import RSAKey

from tests.support.http import TLS
from vssid_broker.config import Settings
from vssid_broker.errors.login import (
    CodeExchangeFailed,
    ProviderMisconfigured,
    ProviderUnavailable,
)
from vssid_broker.federation.outbound import OutboundClient
from vssid_broker.federation.provider import ProviderClient

ISSUER = "https://vneid.example"


def discovery(**changes: Any) -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "id_token_signing_alg_values_supported": ["RS256"],
    } | changes


def jwks(*kids: str) -> dict[str, Any]:
    return {
        "keys": [
            RSAKey.generate_key(2048, parameters={"kid": kid}).as_dict(private=False)
            for kid in kids
        ]
    }


WEB = Settings().vneid_web_client


def client(**settings: Any) -> ProviderClient:
    configured = Settings(**({"vneid_issuer": ISSUER} | settings))
    outbound = OutboundClient(
        timeout_seconds=configured.vneid_http_timeout_seconds, ssl_context=TLS
    )
    return ProviderClient(configured, outbound)


@respx.mock
async def test_unknown_kid_refetches_jwks_but_never_faster_than_the_floor() -> None:
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(json=discovery())
    route = respx.get(f"{ISSUER}/jwks")
    route.side_effect = [
        httpx.Response(200, json=jwks("a")),
        httpx.Response(200, json=jwks("a", "b")),
    ]
    provider = client(vneid_jwks_min_refetch_seconds=0)
    assert [k.kid for k in (await provider.signing_keys()).keys] == ["a"]
    assert [k.kid for k in (await provider.signing_keys(refresh_for_kid="b")).keys] == ["a", "b"]
    assert route.call_count == 2

    floored = client(vneid_jwks_min_refetch_seconds=3600)
    route.side_effect = [httpx.Response(200, json=jwks("a"))] * 5
    await floored.signing_keys()
    for _ in range(4):  # a flood of tokens with the same made-up kid
        await floored.signing_keys(refresh_for_kid="made-up")
    assert route.call_count == 4  # the two above, the first fetch and one for `made-up`


@respx.mock
async def test_a_kid_not_seen_before_refetches_at_once_whatever_the_floor() -> None:
    """VNeID rotated its key moments after our last fetch: the login it signed with the new
    key is not refused (each refusal burns the person's VNeID sign-in)."""
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(json=discovery())
    route = respx.get(f"{ISSUER}/jwks")
    route.side_effect = [
        httpx.Response(200, json=jwks("a")),
        httpx.Response(200, json=jwks("a", "b")),
        httpx.Response(200, json=jwks("a", "b", "c")),
    ]
    provider = client(vneid_jwks_min_refetch_seconds=30)
    await provider.signing_keys()
    assert "b" in [k.kid for k in (await provider.signing_keys(refresh_for_kid="b")).keys]
    assert "c" in [k.kid for k in (await provider.signing_keys(refresh_for_kid="c")).keys]
    assert route.call_count == 3


@respx.mock
async def test_discovery_with_another_issuer_is_refused() -> None:
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(
        json=discovery(issuer="https://evil.example")
    )
    with pytest.raises(ProviderMisconfigured):
        await client().metadata()


@respx.mock
async def test_discovery_with_http_endpoints_is_refused() -> None:
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(
        json=discovery(token_endpoint="http://vneid.example/token")
    )
    with pytest.raises(ProviderMisconfigured):
        await client().metadata()


@respx.mock
async def test_discovery_read_is_retried_once_on_a_transport_error() -> None:
    route = respx.get(f"{ISSUER}/.well-known/openid-configuration")
    route.side_effect = [httpcore.ConnectError("down"), httpx.Response(200, json=discovery())]
    assert (await client().metadata()).issuer == ISSUER


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(503, text="maintenance"), ProviderUnavailable),
        (httpx.Response(200, text="<html>gateway</html>"), ProviderUnavailable),
        (httpx.Response(400, json={"error": "invalid_grant"}), CodeExchangeFailed),
        (
            httpx.Response(200, json={"access_token": "x", "token_type": "Bearer"}),
            CodeExchangeFailed,
        ),
    ],
)
@respx.mock
async def test_token_endpoint_failures(response: httpx.Response, error: type[Exception]) -> None:
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(json=discovery())
    token = respx.post(f"{ISSUER}/token").mock(return_value=response)
    with pytest.raises(error):
        provider = client()
        await provider.exchange_code("code", "https://broker.example/cb", "v" * 43, WEB)
    assert token.call_count == 1  # a code is single use: never retried


@respx.mock
async def test_code_exchange_sends_the_verifier_and_basic_auth() -> None:
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(json=discovery())
    token = respx.post(f"{ISSUER}/token").respond(
        json={"id_token": "a.b.c", "token_type": "Bearer"}
    )
    await client().exchange_code("the-code", "https://broker.example/cb", "v" * 43, WEB)
    sent = token.calls.last.request
    assert sent.headers["authorization"].startswith("Basic ")
    body = dict(httpx.QueryParams(sent.content.decode()))
    assert body == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "https://broker.example/cb",
        "code_verifier": "v" * 43,
    }


@respx.mock
async def test_a_public_app_client_names_itself_without_credentials() -> None:
    """RFC 8252 §8.4: the app's native registration may be public; PKCE binds its code."""
    respx.get(f"{ISSUER}/.well-known/openid-configuration").respond(json=discovery())
    token = respx.post(f"{ISSUER}/token").respond(
        json={"id_token": "a.b.c", "token_type": "Bearer"}
    )
    app = Settings().vneid_app_client
    await client().exchange_code(
        "the-code", "vn.gov.baohiemxahoi.vssid:/oauth/vneid", "v" * 43, app
    )
    sent = token.calls.last.request
    assert "authorization" not in sent.headers
    body = dict(httpx.QueryParams(sent.content.decode()))
    assert body["client_id"] == "vssid-broker-app" and "client_secret" not in body


@pytest.mark.parametrize("issuer", ["https://vneid.example/", "https://vneid.example/oidc/"])
@respx.mock
async def test_an_issuer_is_compared_exactly_as_configured(issuer: str) -> None:
    """Discovery §4.1: the well-known path follows the issuer without its trailing "/"; §4.3:
    the document's issuer must then equal the configured one exactly."""
    well_known = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    route = respx.get(well_known)
    route.respond(json=discovery(issuer=issuer))
    assert (await client(vneid_issuer=issuer).metadata()).issuer == issuer
    route.respond(json=discovery(issuer=issuer.rstrip("/")))
    with pytest.raises(ProviderMisconfigured):
        await client(vneid_issuer=issuer).metadata()
