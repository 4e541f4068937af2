"""DPoP (RFC 9449): the app's tokens are bound to its key; every proof rule refuses its case."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import Stack
from tests.support.dpop import AppDpopKey
from tests.support.flows import app_complete, app_until_redirect
from tests.support.http import AsyncClient

CITIZEN = "001085012345"


async def dpop_login(app: httpx.AsyncClient, stack: Stack, key: AppDpopKey) -> dict[str, Any]:
    redirect = await app_until_redirect(app, stack.broker, CITIZEN)
    url = f"{stack.broker}/api/v1/auth/vneid/complete"
    app.headers["DPoP"] = key.proof("POST", url)
    try:
        done = await app_complete(app, stack.broker, redirect)
    finally:
        del app.headers["DPoP"]
    assert done.status_code == 200, done.text
    tokens: dict[str, Any] = done.json()
    return tokens


async def call_me(
    app: httpx.AsyncClient, stack: Stack, access_token: str, proof: str | None, path: str = ""
) -> httpx.Response:
    headers = {"Authorization": f"DPoP {access_token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return await app.get(f"{stack.broker}/api/v1/me{path}", headers=headers)


async def dpop_refresh(
    app: httpx.AsyncClient, stack: Stack, refresh_token: str, proof: str | None
) -> httpx.Response:
    return await app.post(
        f"{stack.broker}/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers={"DPoP": proof} if proof else {},
    )


@pytest.fixture
def key(stack: Stack) -> AppDpopKey:
    return AppDpopKey(stack.clock)


async def test_dpop_login_binds_tokens_to_the_apps_key(stack: Stack, key: AppDpopKey) -> None:
    me_url = f"{stack.broker}/api/v1/me"
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        assert tokens["token_type"] == "DPoP"
        jwks = (await app.get(f"{stack.broker}/.well-known/jwks.json")).json()
        claims = jwt.decode(tokens["access_token"], KeySet.import_key_set(jwks)).claims
        assert claims["cnf"] == {"jkt": key.jkt}

        access = tokens["access_token"]
        me = await call_me(app, stack, access, key.proof("GET", me_url, access_token=access))
        assert me.status_code == 200 and me.json()["full_name"] == "Nguyễn Văn An"
        insurance = await call_me(
            app,
            stack,
            access,
            key.proof("GET", f"{me_url}/insurance", access_token=access),
            "/insurance",
        )
        assert insurance.status_code == 200

        token_url = f"{stack.broker}/api/v1/auth/token"
        rotated = await dpop_refresh(
            app, stack, tokens["refresh_token"], key.proof("POST", token_url)
        )
        assert rotated.status_code == 200 and rotated.json()["token_type"] == "DPoP"
        new_access = rotated.json()["access_token"]
        again = await call_me(
            app, stack, new_access, key.proof("GET", me_url, access_token=new_access)
        )
        assert again.status_code == 200


async def test_bound_token_is_worthless_as_a_bearer_token(stack: Stack, key: AppDpopKey) -> None:
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        stolen = await app.get(
            f"{stack.broker}/api/v1/me",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
    assert stolen.status_code == 401
    assert stolen.json()["code"] == "invalid_token"


def _refusal_cases() -> Iterator[Any]:
    yield pytest.param({"method": "POST"}, id="wrong method")
    yield pytest.param({"path": "/api/v1/me/insurance"}, id="wrong URL")
    yield pytest.param({"age": 600}, id="old iat")
    yield pytest.param({"age": -600}, id="iat in the future")
    yield pytest.param({"other_key": True}, id="wrong key")
    yield pytest.param({"no_ath": True}, id="missing ath")
    yield pytest.param({"other_ath": True}, id="ath of another token")
    yield pytest.param({"typ": "JWT"}, id="wrong typ")
    yield pytest.param({"no_proof": True}, id="no proof")
    yield pytest.param({"private_jwk": True}, id="private key in header")


@pytest.mark.parametrize("case", list(_refusal_cases()))
async def test_resource_request_proof_rules(
    stack: Stack, key: AppDpopKey, case: dict[str, Any]
) -> None:
    me_url = f"{stack.broker}/api/v1/me"
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        access = tokens["access_token"]
        signer = AppDpopKey(stack.clock) if case.get("other_key") else key
        now = int(stack.clock().timestamp())
        proof = signer.proof(
            case.get("method", "GET"),
            f"{stack.broker}{case.get('path', '/api/v1/me')}",
            access_token=None if case.get("no_ath") else ("x" if case.get("other_ath") else access),
            iat=now - case.get("age", 0),
            typ=case.get("typ", "dpop+jwt"),
            jwk=key.key.as_dict(private=True) if case.get("private_jwk") else None,
        )
        refused = await call_me(app, stack, access, None if case.get("no_proof") else proof)
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_dpop_proof"
        assert refused.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
        # Nothing was spent: a good proof still works.
        fine = await call_me(app, stack, access, key.proof("GET", me_url, access_token=access))
    assert fine.status_code == 200


async def test_replayed_proof_is_refused(stack: Stack, key: AppDpopKey) -> None:
    me_url = f"{stack.broker}/api/v1/me"
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        access = tokens["access_token"]
        proof = key.proof("GET", me_url, access_token=access)
        first = await call_me(app, stack, access, proof)
        replayed = await call_me(app, stack, access, proof)
    assert first.status_code == 200
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_dpop_proof"


async def test_bound_refresh_token_needs_a_proof_of_its_key(stack: Stack, key: AppDpopKey) -> None:
    token_url = f"{stack.broker}/api/v1/auth/token"
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        refresh_token = tokens["refresh_token"]
        thief = AppDpopKey(stack.clock)
        with_other_key = await dpop_refresh(
            app, stack, refresh_token, thief.proof("POST", token_url)
        )
        without_proof = await dpop_refresh(app, stack, refresh_token, None)
        wrong_url = await dpop_refresh(
            app, stack, refresh_token, key.proof("POST", f"{stack.broker}/api/v1/auth/revoke")
        )
        for refused in (with_other_key, without_proof, wrong_url):
            assert refused.status_code == 400
            assert refused.json()["code"] == "invalid_dpop_proof"
        # The refusals changed nothing: the app's own key still refreshes.
        rightful = await dpop_refresh(app, stack, refresh_token, key.proof("POST", token_url))
    assert rightful.status_code == 200


async def test_a_bad_proof_at_login_leaves_the_login_unspent(stack: Stack, key: AppDpopKey) -> None:
    url = f"{stack.broker}/api/v1/auth/vneid/complete"
    async with AsyncClient() as app:
        redirect = await app_until_redirect(app, stack.broker, CITIZEN)
        app.headers["DPoP"] = key.proof("GET", url)  # wrong method
        refused = await app_complete(app, stack.broker, redirect)
        app.headers["DPoP"] = key.proof("POST", url)
        done = await app_complete(app, stack.broker, redirect)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_dpop_proof"
    assert done.status_code == 200 and done.json()["token_type"] == "DPoP"


async def test_bearer_tokens_can_be_switched_off(stack: Stack, key: AppDpopKey) -> None:
    async with AsyncClient() as app:
        bearer_login = await app_complete(
            app, stack.broker, await app_until_redirect(app, stack.broker, CITIZEN)
        )
        bearer = bearer_login.json()
        stack.settings.bearer_tokens_allowed = False
        try:
            refused_login = await app_complete(
                app, stack.broker, await app_until_redirect(app, stack.broker, CITIZEN)
            )
            refused_me = await app.get(
                f"{stack.broker}/api/v1/me",
                headers={"Authorization": f"Bearer {bearer['access_token']}"},
            )
            refused_refresh = await dpop_refresh(app, stack, bearer["refresh_token"], None)
            bound = await dpop_login(app, stack, key)
        finally:
            stack.settings.bearer_tokens_allowed = True
    assert refused_login.status_code == 400
    assert refused_login.json()["code"] == "invalid_dpop_proof"
    assert refused_me.status_code == 401
    assert refused_refresh.status_code == 400
    assert bound["token_type"] == "DPoP"


async def test_a_revoked_bound_refresh_token_with_a_valid_proof_is_invalid_grant(
    stack: Stack, key: AppDpopKey
) -> None:
    token_url = f"{stack.settings.public_base_url}/api/v1/auth/token"
    async with AsyncClient() as app:
        tokens = await dpop_login(app, stack, key)
        revoked = await app.post(
            f"{stack.broker}/api/v1/auth/revoke", data={"token": tokens["refresh_token"]}
        )
        assert revoked.status_code == 200
        refused = await dpop_refresh(
            app, stack, tokens["refresh_token"], key.proof("POST", token_url)
        )
        # Without a proof, too: the token is over, whatever the binding says.
        bare = await dpop_refresh(app, stack, tokens["refresh_token"], None)
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_grant"
    assert bare.status_code == 400 and bare.json()["code"] == "invalid_grant"
