"""An independent OpenID client (authlib + joserfc, no broker code) against the simulator."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tests.vneid_sim.conftest import PRIVATE_KEY_JWT_CLIENT, RP_SIGNING_KEY, Sim
from tests.vneid_sim.flow import AN, BINH, DEMO_CLIENT_ID, DEMO_SECRET, FULL_SCOPE, REDIRECT_URI
from vssid_broker.vneid_sim.driver import sign_in_at_vneid


async def run_code_flow(
    sim: Sim,
    http: httpx.AsyncClient,
    client: AsyncOAuth2Client,
    redirect_uri: str,
    citizen_id: str,
) -> tuple[dict[str, Any], str]:
    metadata = (await http.get(sim.url("/.well-known/openid-configuration"))).json()
    verifier = generate_token(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"],
        code_verifier=verifier,
        nonce=nonce,
        acr_values="LoA2",
        redirect_uri=redirect_uri,
    )
    location = await sign_in_at_vneid(http, url, citizen_id)
    token = await client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
        state=state,
    )
    return dict(token), nonce


async def validated_id_token(
    sim: Sim, http: httpx.AsyncClient, id_token: str, client_id: str, nonce: str
) -> dict[str, Any]:
    metadata = (await http.get(sim.url("/.well-known/openid-configuration"))).json()
    keys = KeySet.import_key_set((await http.get(metadata["jwks_uri"])).json())
    decoded = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert decoded.header["kid"] in {k.kid for k in keys}
    JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        acr={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_code_flow_with_client_secret(sim: Sim, http: httpx.AsyncClient, method: str) -> None:
    async with AsyncOAuth2Client(
        DEMO_CLIENT_ID,
        DEMO_SECRET,
        scope=FULL_SCOPE,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    ) as client:
        token, nonce = await run_code_flow(sim, http, client, REDIRECT_URI, AN)
        claims = await validated_id_token(sim, http, token["id_token"], DEMO_CLIENT_ID, nonce)
        assert token["token_type"].lower() == "bearer"
        assert claims["acr"] == "LoA2"
        assert claims["amr"] == ["pwd", "otp"]
        assert claims["azp"] == DEMO_CLIENT_ID
        assert claims["SoDinhDanh"] == AN
        assert claims["sub"] != AN  # opaque subject, not the citizen ID
        assert claims["HoVaTen"] == claims["name"] == "Nguyễn Văn An"
        assert claims["NgayThangNamSinh"] == "19850312"
        assert claims["birthdate"] == "1985-03-12"
        assert claims["gender"] == "male"
        userinfo = await client.get(sim.url("/userinfo"))
        assert userinfo.status_code == 200
        assert userinfo.json()["sub"] == claims["sub"]
        assert userinfo.json()["SoDinhDanh"] == AN


@pytest.mark.parametrize("client_id", [PRIVATE_KEY_JWT_CLIENT.client_id, "rp-jwks-uri"])
async def test_code_flow_with_private_key_jwt(
    sim: Sim, http: httpx.AsyncClient, client_id: str
) -> None:
    token_endpoint = sim.url("/token")
    async with AsyncOAuth2Client(
        client_id,
        RP_SIGNING_KEY.as_dict(private=True),
        scope="openid",
        code_challenge_method="S256",
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, alg="RS256"),
    ) as client:
        # Any port is fine for the registered loopback redirect http://127.0.0.1/callback.
        token, nonce = await run_code_flow(sim, http, client, "http://127.0.0.1:4711/callback", AN)
    claims = await validated_id_token(sim, http, token["id_token"], client_id, nonce)
    assert claims["acr"] == "LoA2"


async def test_level_one_citizen_gets_loa1_even_when_loa2_is_asked(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    async with AsyncOAuth2Client(
        DEMO_CLIENT_ID, DEMO_SECRET, scope="openid", code_challenge_method="S256"
    ) as client:
        token, nonce = await run_code_flow(sim, http, client, REDIRECT_URI, BINH)
    claims = await validated_id_token(sim, http, token["id_token"], DEMO_CLIENT_ID, nonce)
    assert claims["acr"] == "LoA1"
    assert claims["amr"] == ["pwd"]
