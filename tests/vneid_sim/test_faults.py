"""Each fault of the /_test API misbehaves exactly as named, once, then the provider recovers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet, OctKey, RSAKey

from tests.support.http import AsyncClient
from tests.vneid_sim.conftest import PRIVATE_KEY_JWT_CLIENT, RP_SIGNING_KEY, Sim
from tests.vneid_sim.flow import (
    AN,
    DEMO_CLIENT_ID,
    authorization_url,
    code_for,
    exchange,
    pkce_pair,
    query,
    tokens_for,
    unverified,
)
from vssid_broker.vneid_sim.app import create_app
from vssid_broker.vneid_sim.driver import sign_in_at_vneid
from vssid_broker.vneid_sim.faults import DIALECT_FAULTS, FAULT_NAMES, WRONG_ISSUER

NONCE = "the-nonce"
Check = Callable[[dict[str, Any], dict[str, Any], str, KeySet], None]


async def add_fault(http: httpx.AsyncClient, sim: Sim, name: str, **extra: Any) -> None:
    response = await http.post(sim.url("/_test/faults"), json={"fault": name, **extra})
    assert response.status_code == 201, response.text


async def key_set(http: httpx.AsyncClient, sim: Sim) -> KeySet:
    return KeySet.import_key_set((await http.get(sim.url("/jwks"))).json())


def assert_sound(token: str, keys: KeySet, issuer: str) -> None:
    """A token with none of the defects: verifies and carries the expected claims."""
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    claims = decoded.claims
    assert decoded.header["kid"] in {k.kid for k in keys}
    assert claims["iss"] == issuer and claims["aud"] == DEMO_CLIENT_ID
    assert claims["azp"] == DEMO_CLIENT_ID and claims["nonce"] == NONCE
    assert claims["iat"] <= time.time() + 5 < claims["exp"] + 5 and claims["sub"]
    assert claims["acr"] == "LoA2"


def verifies(token: str, keys: KeySet | RSAKey) -> bool:
    try:
        jwt.decode(token, keys, algorithms=["RS256"])
    except (BadSignatureError, InvalidKeyIdError):
        return False
    return True


def check_bad_signature(
    header: dict[str, Any], claims: dict[str, Any], token: str, keys: KeySet
) -> None:
    assert header["alg"] == "RS256" and header["kid"] in {k.kid for k in keys}
    assert not verifies(token, keys)
    assert claims["iss"] and claims["nonce"] == NONCE


def check_alg_none(
    header: dict[str, Any], claims: dict[str, Any], token: str, keys: KeySet
) -> None:
    assert header["alg"] == "none" and token.endswith(".")
    assert claims["nonce"] == NONCE


def check_hs256_public_key(
    header: dict[str, Any], claims: dict[str, Any], token: str, keys: KeySet
) -> None:
    assert header["alg"] == "HS256"
    published = keys.get_by_kid(header["kid"])
    assert isinstance(published, RSAKey)
    pem = published.as_pem(private=False)
    # It verifies as HMAC keyed with the published PEM: the key-confusion attack.
    jwt.decode(token, OctKey(pem, pem), algorithms=["HS256"])


def claim_check(test: Callable[[dict[str, Any]], bool]) -> Check:
    def check(header: dict[str, Any], claims: dict[str, Any], token: str, keys: KeySet) -> None:
        assert verifies(token, keys), "only the named claim may be wrong, not the signature"
        assert test(claims), claims

    return check


def check_no_kid(multiple: bool) -> Check:
    def check(header: dict[str, Any], claims: dict[str, Any], token: str, keys: KeySet) -> None:
        assert "kid" not in header
        assert (len(keys.keys) >= 2) if multiple else True
        # Verifies with one of the published keys (tried one by one).
        assert any(verifies(token, KeySet([k])) for k in keys.keys), (
            "must be signed by a published key"
        )

    return check


def check_unknown_kid(
    header: dict[str, Any], claims: dict[str, Any], token: str, keys: KeySet
) -> None:
    assert header["kid"] not in {k.kid for k in keys}
    # Not even a published key under another kid verifies it.
    assert not any(verifies(token, k) for k in keys.keys if isinstance(k, RSAKey))


ID_TOKEN_CHECKS: dict[str, Check] = {
    "id_token_bad_signature": check_bad_signature,
    "id_token_alg_none": check_alg_none,
    "id_token_hs256_public_key": check_hs256_public_key,
    "id_token_wrong_iss": claim_check(lambda c: c["iss"] == WRONG_ISSUER),
    "id_token_wrong_aud": claim_check(
        lambda c: c["aud"] != DEMO_CLIENT_ID and c["azp"] == DEMO_CLIENT_ID
    ),
    "id_token_extra_aud_no_azp": claim_check(
        lambda c: DEMO_CLIENT_ID in c["aud"] and len(c["aud"]) == 2 and "azp" not in c
    ),
    "id_token_missing_nonce": claim_check(lambda c: "nonce" not in c),
    "id_token_wrong_nonce": claim_check(lambda c: c["nonce"] != NONCE),
    "id_token_expired": claim_check(lambda c: c["iat"] < c["exp"] < time.time()),
    "id_token_iat_future": claim_check(lambda c: c["iat"] > time.time() + 600),
    "id_token_missing_sub": claim_check(lambda c: "sub" not in c),
    "id_token_no_kid_single_key": check_no_kid(multiple=False),
    "id_token_no_kid_multiple_keys": check_no_kid(multiple=True),
    "id_token_unknown_kid": check_unknown_kid,
    "id_token_wrong_acr": claim_check(lambda c: c["acr"] == "LoA1" and c["SoDinhDanh"] == AN),
}


def test_every_fault_name_is_tested() -> None:
    others = {
        "userinfo_wrong_sub", "userinfo_http_500", "discovery_wrong_issuer", "jwks_http_500",
        "authorize_access_denied", "authorize_server_error", "authorize_temporarily_unavailable",
        "authorize_wrong_iss", "authorize_missing_iss", "authorize_wrong_state",
        "token_invalid_grant", "token_http_500", "token_non_json", "token_slow",
    }  # fmt: skip
    # The dialect's faults are each played against the broker in tests/e2e/test_vneid_dialect.py.
    assert set(FAULT_NAMES) == set(ID_TOKEN_CHECKS) | others | set(DIALECT_FAULTS)


@pytest.mark.parametrize("fault", list(ID_TOKEN_CHECKS))
async def test_id_token_fault_once(sim: Sim, http: httpx.AsyncClient, fault: str) -> None:
    await add_fault(http, sim, fault)
    bad = (await tokens_for(http, sim.base_url, nonce=NONCE))["id_token"]
    header, claims = unverified(bad)
    ID_TOKEN_CHECKS[fault](header, claims, bad, await key_set(http, sim))
    good = (await tokens_for(http, sim.base_url, nonce=NONCE))["id_token"]
    assert_sound(good, await key_set(http, sim), sim.base_url)


async def test_times_counts_down(sim: Sim, http: httpx.AsyncClient) -> None:
    await add_fault(http, sim, "id_token_wrong_nonce", times=2)
    for _ in range(2):
        token = (await tokens_for(http, sim.base_url, nonce=NONCE))["id_token"]
        assert unverified(token)[1]["nonce"] != NONCE
    token = (await tokens_for(http, sim.base_url, nonce=NONCE))["id_token"]
    assert unverified(token)[1]["nonce"] == NONCE


async def test_userinfo_wrong_sub_once(sim: Sim, http: httpx.AsyncClient) -> None:
    tokens = await tokens_for(http, sim.base_url)
    sub = unverified(tokens["id_token"])[1]["sub"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    await add_fault(http, sim, "userinfo_wrong_sub")
    assert (await http.get(sim.url("/userinfo"), headers=bearer)).json()["sub"] != sub
    assert (await http.get(sim.url("/userinfo"), headers=bearer)).json()["sub"] == sub


@pytest.mark.parametrize(
    ("fault", "path"),
    [("userinfo_http_500", "/userinfo"), ("jwks_http_500", "/jwks")],
)
async def test_http_500_once(sim: Sim, http: httpx.AsyncClient, fault: str, path: str) -> None:
    tokens = await tokens_for(http, sim.base_url)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    await add_fault(http, sim, fault)
    assert (await http.get(sim.url(path), headers=bearer)).status_code == 500
    assert (await http.get(sim.url(path), headers=bearer)).status_code == 200


async def test_discovery_wrong_issuer_once(sim: Sim, http: httpx.AsyncClient) -> None:
    await add_fault(http, sim, "discovery_wrong_issuer")
    url = sim.url("/.well-known/openid-configuration")
    assert (await http.get(url)).json()["issuer"] == WRONG_ISSUER
    assert (await http.get(url)).json()["issuer"] == sim.base_url


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("authorize_access_denied", lambda p, s: p["error"] == "access_denied" and "code" not in p),
        ("authorize_server_error", lambda p, s: p["error"] == "server_error" and "code" not in p),
        (
            "authorize_temporarily_unavailable",
            lambda p, s: p["error"] == "temporarily_unavailable" and "code" not in p,
        ),
        ("authorize_wrong_iss", lambda p, s: p["iss"] == WRONG_ISSUER and "code" in p),
        ("authorize_missing_iss", lambda p, s: "iss" not in p and "code" in p),
        ("authorize_wrong_state", lambda p, s: p["state"] != s and "code" in p),
    ],
)
async def test_authorization_response_fault_once(
    sim: Sim,
    http: httpx.AsyncClient,
    fault: str,
    check: Callable[[dict[str, str], str], bool],
) -> None:
    await add_fault(http, sim, fault)
    _, challenge = pkce_pair()
    location = await sign_in_at_vneid(
        http, authorization_url(sim.base_url, challenge, state="s-1"), AN
    )
    params = query(location)
    assert check(params, "s-1"), params
    normal = query(
        await sign_in_at_vneid(http, authorization_url(sim.base_url, challenge, state="s-2"), AN)
    )
    assert normal["state"] == "s-2" and normal["iss"] == sim.base_url and "code" in normal


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (
            "token_invalid_grant",
            lambda r: r.status_code == 400 and r.json()["error"] == "invalid_grant",
        ),
        ("token_http_500", lambda r: r.status_code == 500),
        (
            "token_non_json",
            lambda r: (
                r.status_code == 200
                and not r.headers["content-type"].startswith("application/json")
            ),
        ),
    ],
)
async def test_token_fault_once_leaves_the_code_usable(
    sim: Sim,
    http: httpx.AsyncClient,
    fault: str,
    check: Callable[[httpx.Response], bool],
) -> None:
    code, verifier, _ = await code_for(http, sim.base_url)
    await add_fault(http, sim, fault)
    assert check(await exchange(http, sim.base_url, code, verifier))
    assert (await exchange(http, sim.base_url, code, verifier)).status_code == 200


async def test_token_slow_delays_once(sim: Sim, http: httpx.AsyncClient) -> None:
    code, verifier, _ = await code_for(http, sim.base_url)
    await add_fault(http, sim, "token_slow", delay_seconds=0.4)
    started = time.monotonic()
    response = await exchange(http, sim.base_url, code, verifier)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4
    code, verifier, _ = await code_for(http, sim.base_url)
    started = time.monotonic()
    await exchange(http, sim.base_url, code, verifier)
    assert time.monotonic() - started < 0.4


async def test_fault_api_lists_clears_and_refuses_unknown_names(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    await add_fault(http, sim, "jwks_http_500", times=3)
    listed = (await http.get(sim.url("/_test/faults"))).json()
    assert listed["pending"] == [{"fault": "jwks_http_500", "times": 3, "delay_seconds": None}]
    assert (await http.delete(sim.url("/_test/faults"))).status_code == 204
    assert (await http.get(sim.url("/_test/faults"))).json()["pending"] == []
    unknown = await http.post(sim.url("/_test/faults"), json={"fault": "make_coffee"})
    assert unknown.status_code == 400 and "known_faults" in unknown.json()


async def test_test_api_is_404_without_test_mode() -> None:
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://sim") as client:
        for method, path in [
            ("GET", "/_test/faults"),
            ("POST", "/_test/faults"),
            ("DELETE", "/_test/faults"),
            ("POST", "/_test/keys/rotate"),
            ("POST", f"/_test/citizens/{AN}/lock"),
        ]:
            assert (await client.request(method, path)).status_code == 404


async def test_key_rotation_keeps_the_old_key_published(sim: Sim, http: httpx.AsyncClient) -> None:
    before = (await tokens_for(http, sim.base_url, nonce=NONCE))["id_token"]
    rotated = (await http.post(sim.url("/_test/keys/rotate"))).json()
    assert rotated["previous_kid"] == unverified(before)[0]["kid"]
    keys = await key_set(http, sim)
    assert {rotated["kid"], rotated["previous_kid"]} <= {k.kid for k in keys}
    after = (await tokens_for(http, sim.base_url, nonce=NONCE))["id_token"]
    assert unverified(after)[0]["kid"] == rotated["kid"]
    assert verifies(before, keys) and verifies(after, keys)
    # After the grace period only the new key remains.
    sim.state.now = lambda: time.time() + sim.state.settings.key_grace_seconds + 1
    assert {k.kid for k in await key_set(http, sim)} == {rotated["kid"]}


async def test_lock_revokes_tokens_and_sends_backchannel_logout(
    sim: Sim, http: httpx.AsyncClient
) -> None:
    redirect_uri = "http://127.0.0.1:4711/callback"
    code, verifier, _ = await code_for(
        http, sim.base_url, client_id=PRIVATE_KEY_JWT_CLIENT.client_id, redirect_uri=redirect_uri
    )
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "RS256", "kid": RP_SIGNING_KEY.kid},
        {
            "iss": PRIVATE_KEY_JWT_CLIENT.client_id,
            "sub": PRIVATE_KEY_JWT_CLIENT.client_id,
            "aud": sim.base_url,
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        },
        RP_SIGNING_KEY,
    )
    tokens = (
        await http.post(
            sim.url("/token"),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
    ).json()
    sub = unverified(tokens["id_token"])[1]["sub"]

    result = (await http.post(sim.url(f"/_test/citizens/{AN}/lock"))).json()
    assert result["locked"] is True and result["revoked_access_tokens"] >= 1
    assert result["backchannel_logout"] == [
        {
            "client_id": PRIVATE_KEY_JWT_CLIENT.client_id,
            "uri": str(sim.backchannel_posts[0].url),
            "status": 200,
        }
    ]
    form = dict(httpx.QueryParams(sim.backchannel_posts[0].content.decode()))
    logout = jwt.decode(form["logout_token"], await key_set(http, sim), algorithms=["RS256"])
    assert logout.header["typ"] == "logout+jwt"
    assert logout.claims["sub"] == sub and logout.claims["aud"] == PRIVATE_KEY_JWT_CLIENT.client_id
    assert "http://schemas.openid.net/event/backchannel-logout" in logout.claims["events"]
    assert "nonce" not in logout.claims

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get(sim.url("/userinfo"), headers=bearer)).status_code == 401
    _, challenge = pkce_pair()
    location = await sign_in_at_vneid(http, authorization_url(sim.base_url, challenge), AN)
    assert query(location)["error"] == "access_denied"
