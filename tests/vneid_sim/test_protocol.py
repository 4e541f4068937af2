"""Discovery, JWKS, and the refusals the authorization, PAR, token and userinfo endpoints owe."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt

from tests.support.http import Client
from tests.support.live_server import free_port, live_server
from tests.vneid_sim.conftest import PRIVATE_KEY_JWT_CLIENT, RP_SIGNING_KEY, Sim
from tests.vneid_sim.flow import (
    AN,
    DEMO_APP_CLIENT_ID,
    DEMO_CLIENT_ID,
    DEMO_SECRET,
    REDIRECT_URI,
    authorization_url,
    code_for,
    exchange,
    pkce_pair,
    query,
    tokens_for,
)
from vssid_broker.vneid_sim.app import create_app
from vssid_broker.vneid_sim.config import SimSettings
from vssid_broker.vneid_sim.driver import sign_in_at_vneid, sign_in_at_vneid_sync

REQUIRED_METADATA = {
    # OIDC Discovery 1.0 §3 REQUIRED, plus what RFC 8414 and this project need.
    "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
    "response_types_supported", "subject_types_supported",
    "id_token_signing_alg_values_supported", "end_session_endpoint",
    "pushed_authorization_request_endpoint", "grant_types_supported",
    "token_endpoint_auth_methods_supported", "code_challenge_methods_supported",
    "scopes_supported", "claims_supported", "acr_values_supported",
    "authorization_response_iss_parameter_supported", "backchannel_logout_supported",
}  # fmt: skip


@pytest.mark.parametrize("path", ["openid-configuration", "oauth-authorization-server"])
async def test_discovery_has_the_required_fields(
    sim: Sim, http: httpx.AsyncClient, path: str
) -> None:
    metadata = (await http.get(sim.url(f"/.well-known/{path}"))).json()
    assert metadata.keys() >= REQUIRED_METADATA
    assert metadata["issuer"] == sim.base_url
    assert metadata["authorization_endpoint"] == sim.url("/authorize")
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["subject_types_supported"] == ["public"]
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["acr_values_supported"] == ["LoA1", "LoA2"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert "openid" in metadata["scopes_supported"]
    assert {"SoDinhDanh", "HoVaTen", "NgayThangNamSinh", "acr"} <= set(metadata["claims_supported"])


async def test_jwks_publishes_only_public_rsa_keys(sim: Sim, http: httpx.AsyncClient) -> None:
    keys = (await http.get(sim.url("/jwks"))).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and "d" not in k and k["kid"] for k in keys)


def test_works_mounted_under_a_path_prefix() -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/vneid"
    parent = FastAPI()
    parent.mount("/vneid", create_app(SimSettings(issuer=issuer)))
    with live_server(parent, port), Client() as http:
        metadata = http.get(issuer + "/.well-known/openid-configuration").json()
        assert metadata["issuer"] == issuer
        assert metadata["token_endpoint"] == issuer + "/token"
        verifier, challenge = pkce_pair()
        location = sign_in_at_vneid_sync(http, authorization_url(issuer, challenge), AN)
        params = query(location)
        assert params["iss"] == issuer
        token = http.post(
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "code_verifier": verifier,
                "redirect_uri": REDIRECT_URI,
            },
            auth=(DEMO_CLIENT_ID, DEMO_SECRET),
        )
        assert token.status_code == 200, token.text


# --- authorization endpoint ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # absent means plain
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),
        ({"max_age": "-5"}, "invalid_request"),
    ],
)
async def test_refusals_go_back_to_a_valid_redirect_uri(
    sim: Sim, http: httpx.AsyncClient, overrides: dict[str, str | None], error: str
) -> None:
    _, challenge = pkce_pair()
    response = await http.get(authorization_url(sim.base_url, challenge, state="st", **overrides))
    assert response.status_code == 302
    params = query(response.headers["location"])
    assert params["error"] == error and params["error_description"]
    assert params["state"] == "st" and params["iss"] == sim.base_url


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "http://127.0.0.1:8000/auth/vneid/callback/extra"},
        {"redirect_uri": "http://localhost:9999/auth/vneid/callback"},  # only IP loopback is lax
        {"redirect_uri": None},
        {"client_id": "unknown-client"},
        {"client_id": None},
    ],
)
async def test_bad_client_or_redirect_uri_shows_a_page_and_never_redirects(
    sim: Sim, http: httpx.AsyncClient, overrides: dict[str, str | None]
) -> None:
    _, challenge = pkce_pair()
    response = await http.get(authorization_url(sim.base_url, challenge, **overrides))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert 'data-step="error"' in response.text


async def test_registered_non_loopback_redirect_uris_match_exactly(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    _, challenge = pkce_pair()
    for client_id, redirect_uri in (
        (DEMO_APP_CLIENT_ID, "vn.gov.baohiemxahoi.vssid:/oauth/vneid"),
        (DEMO_APP_CLIENT_ID, "https://vssid.baohiemxahoi.gov.vn/app/oauth/vneid"),
        (DEMO_CLIENT_ID, "http://localhost:8000/auth/vneid/callback"),
    ):
        url = authorization_url(
            sim.base_url, challenge, client_id=client_id, redirect_uri=redirect_uri
        )
        location = await sign_in_at_vneid(http, url, AN)
        assert location.startswith(redirect_uri + "?code=")


async def test_the_web_client_does_not_take_the_apps_redirect(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    """Web and native registrations are apart: the app's scheme is not the web client's."""
    _, challenge = pkce_pair()
    url = authorization_url(
        sim.base_url, challenge, redirect_uri="vn.gov.baohiemxahoi.vssid:/oauth/vneid"
    )
    response = await http.get(url)
    assert response.status_code == 400
    assert "redirect_uri is not registered" in response.text


# --- token endpoint -----------------------------------------------------------------------


async def test_wrong_verifier_is_invalid_grant(sim: Sim, http: httpx.AsyncClient) -> None:
    code, _, _ = await code_for(http, sim.base_url)
    other_verifier, _ = pkce_pair()
    response = await exchange(http, sim.base_url, code, other_verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_reused_code_fails_and_revokes_the_first_access_token(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    code, verifier, _ = await code_for(http, sim.base_url)
    first = await exchange(http, sim.base_url, code, verifier)
    assert first.status_code == 200
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert (await http.get(sim.url("/userinfo"), headers=bearer)).status_code == 200
    second = await exchange(http, sim.base_url, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    revoked = await http.get(sim.url("/userinfo"), headers=bearer)
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]


async def test_expired_code_is_invalid_grant(sim: Sim, http: httpx.AsyncClient) -> None:
    code, verifier, _ = await code_for(http, sim.base_url)
    sim.state.now = lambda: time.time() + 61
    response = await exchange(http, sim.base_url, code, verifier)
    assert response.json()["error"] == "invalid_grant"
    assert "expired" in response.json()["error_description"]


async def test_redirect_uri_must_equal_the_authorization_request(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    code, verifier, _ = await code_for(http, sim.base_url)
    response = await exchange(
        http, sim.base_url, code, verifier, redirect_uri="http://127.0.0.1:8000/auth/vneid/callback"
    )
    assert response.json()["error"] == "invalid_grant"


async def test_wrong_client_secret_is_invalid_client(sim: Sim, http: httpx.AsyncClient) -> None:
    code, verifier, _ = await code_for(http, sim.base_url)
    response = await exchange(http, sim.base_url, code, verifier, secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    # The code was not consumed by the failed attempt.
    assert (await exchange(http, sim.base_url, code, verifier)).status_code == 200


async def test_token_request_without_client_authentication(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        sim.url("/token"), data={"grant_type": "authorization_code", "client_id": DEMO_CLIENT_ID}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_unsupported_grant_type(sim: Sim, http: httpx.AsyncClient) -> None:
    response = await http.post(
        sim.url("/token"), data={"grant_type": "refresh_token"}, auth=(DEMO_CLIENT_ID, DEMO_SECRET)
    )
    assert response.json()["error"] == "unsupported_grant_type"


def client_assertion(audience: str, jti: str, lifetime: int = 60) -> str:
    now = int(time.time())
    claims = {
        "iss": PRIVATE_KEY_JWT_CLIENT.client_id,
        "sub": PRIVATE_KEY_JWT_CLIENT.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
    }
    return jwt.encode({"alg": "RS256", "kid": RP_SIGNING_KEY.kid}, claims, RP_SIGNING_KEY)


async def test_private_key_jwt_assertion_is_single_use_and_audience_checked(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    jti = str(uuid.uuid4())
    body = {
        "grant_type": "authorization_code",
        "code": "not-a-code",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    first = await http.post(
        sim.url("/token"), data={**body, "client_assertion": client_assertion(sim.base_url, jti)}
    )
    assert first.json()["error"] == "invalid_grant"  # authenticated; the code is what fails
    replay = await http.post(
        sim.url("/token"), data={**body, "client_assertion": client_assertion(sim.base_url, jti)}
    )
    assert replay.status_code == 401 and "jti" in replay.json()["error_description"]
    wrong_aud = await http.post(
        sim.url("/token"),
        data={**body, "client_assertion": client_assertion("https://other.example", "j2")},
    )
    assert wrong_aud.status_code == 401
    forged_key_client = await http.post(
        sim.url("/token"),
        data={
            **body,
            "client_id": DEMO_CLIENT_ID,
            "client_assertion": client_assertion(sim.base_url, "j3"),
        },
    )
    assert forged_key_client.status_code == 401


# --- PAR ------------------------------------------------------------------------------------


async def push(http: httpx.AsyncClient, sim: Sim, challenge: str, **extra: str) -> httpx.Response:
    return await http.post(
        sim.url("/par"),
        data={
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": "par-state",
            "nonce": "par-nonce",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        },
        auth=(DEMO_CLIENT_ID, DEMO_SECRET),
    )


async def test_par_round_trip_and_single_use(sim: Sim, http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce_pair()
    pushed = await push(http, sim, challenge)
    assert pushed.status_code == 201
    assert pushed.json()["expires_in"] == 60
    request_uri = pushed.json()["request_uri"]
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    url = sim.url("/authorize?") + str(
        httpx.QueryParams({"client_id": DEMO_CLIENT_ID, "request_uri": request_uri})
    )
    location = await sign_in_at_vneid(http, url, AN)
    params = query(location)
    assert params["state"] == "par-state"
    token = await exchange(http, sim.base_url, params["code"], verifier)
    assert token.status_code == 200
    again = await http.get(url)
    assert again.status_code == 400 and "location" not in again.headers


async def test_par_request_uri_expires(sim: Sim, http: httpx.AsyncClient) -> None:
    _, challenge = pkce_pair()
    request_uri = (await push(http, sim, challenge)).json()["request_uri"]
    sim.state.now = lambda: time.time() + 61
    url = sim.url("/authorize?") + str(
        httpx.QueryParams({"client_id": DEMO_CLIENT_ID, "request_uri": request_uri})
    )
    assert (await http.get(url)).status_code == 400


async def test_par_refuses_bad_parameters_as_json(sim: Sim, http: httpx.AsyncClient) -> None:
    response = await push(http, sim, "short")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    unauthenticated = await http.post(sim.url("/par"), data={"client_id": DEMO_CLIENT_ID})
    assert unauthenticated.status_code == 401


# --- userinfo and logout ----------------------------------------------------------------------


async def test_userinfo_needs_a_valid_bearer_token(sim: Sim, http: httpx.AsyncClient) -> None:
    assert (await http.get(sim.url("/userinfo"))).status_code == 401
    bad = await http.get(sim.url("/userinfo"), headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    tokens = await tokens_for(http, sim.base_url)
    by_form = await http.post(sim.url("/userinfo"), data={"access_token": tokens["access_token"]})
    assert by_form.status_code == 200 and by_form.json()["SoDinhDanh"] == AN
    sim.state.now = lambda: time.time() + 301
    expired = await http.get(
        sim.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert expired.status_code == 401


async def test_rp_initiated_logout(sim: Sim, http: httpx.AsyncClient) -> None:
    tokens = await tokens_for(http, sim.base_url)
    response = await http.get(
        sim.url("/logout"),
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1:8000/signed-out",
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == "http://127.0.0.1:8000/signed-out?state=bye"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get(sim.url("/userinfo"), headers=bearer)).status_code == 401
    unregistered = await http.get(
        sim.url("/logout"),
        params={"client_id": DEMO_CLIENT_ID, "post_logout_redirect_uri": "https://evil.example/"},
    )
    assert unregistered.status_code == 400
    plain = await http.get(sim.url("/logout"))
    assert 'data-step="logged-out"' in plain.text
