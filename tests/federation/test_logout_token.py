"""Back-Channel Logout 1.0 §2.6: each rule of logout-token validation refuses its own case."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet, RSAKey

from vssid_broker.errors.tokens import LogoutTokenRejected
from vssid_broker.federation.logout_token import (
    BACKCHANNEL_LOGOUT_EVENT,
    LogoutExpectations,
    validate_logout_token,
)

ISSUER = "https://vneid.example"
CLIENT_ID = "vssid-broker"
APP_CLIENT_ID = "vssid-broker-app"
PROVIDER_KEY = RSAKey.generate_key(2048, auto_kid=True)
OTHER_KEY = RSAKey.generate_key(2048, auto_kid=True)


async def provider_keys(_kid: str | None) -> KeySet:
    return KeySet([RSAKey.import_key(PROVIDER_KEY.as_dict(private=False))])


def expectations(now: int) -> LogoutExpectations:
    return LogoutExpectations(
        issuer=ISSUER,
        client_ids=[CLIENT_ID, APP_CLIENT_ID],
        allowed_algs=["RS256"],
        now=now,
        skew_seconds=60,
        max_age_seconds=300,
    )


def claims(now: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "3f1c1e9e-0000-4000-8000-000000000001",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: RSAKey = PROVIDER_KEY, typ: str = "logout+jwt") -> str:
    header = {"alg": "RS256", "kid": PROVIDER_KEY.kid, "typ": typ}
    return jwt.encode(header, payload, key, algorithms=["RS256"])


async def test_a_proper_logout_token_names_the_person() -> None:
    now = int(time.time())
    request = await validate_logout_token(sign(claims(now)), provider_keys, expectations(now))
    assert request.issuer == ISSUER
    assert request.subject is not None and request.subject.startswith("3f1c1e9e")
    assert request.expires_at >= now + 120


async def test_a_token_for_the_apps_registration_is_accepted_too() -> None:
    now = int(time.time())
    token = sign(claims(now, aud=APP_CLIENT_ID))
    request = await validate_logout_token(token, provider_keys, expectations(now))
    assert request.subject is not None


async def test_a_sid_only_token_names_the_vneid_session() -> None:
    now = int(time.time())
    token = sign(claims(now, sub=None, sid="vneid-session-1"))
    request = await validate_logout_token(token, provider_keys, expectations(now))
    assert request.subject is None and request.sid == "vneid-session-1"


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("foreign issuer", {"iss": "https://evil.example"}),
        ("other audience", {"aud": "someone-else"}),
        ("no iat", {"iat": None}),
        ("iat too old", {"iat": -3600}),
        ("iat in the future", {"iat": 3600}),
        ("expired", {"exp": -120}),
        ("neither sub nor sid", {"sub": None}),
        ("no events", {"events": None}),
        ("wrong event", {"events": {"http://schemas.openid.net/event/other": {}}}),
        ("event not an object", {"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}}),
        ("has a nonce", {"nonce": "n-0S6_WzA2Mj"}),
        ("no jti", {"jti": None}),
    ],
)
async def test_claim_rules_refuse(case: str, changes: dict[str, Any]) -> None:
    now = int(time.time())
    relative = {k: now + v for k, v in changes.items() if k in ("iat", "exp") and v is not None}
    payload = claims(now, **{**changes, **relative})
    with pytest.raises(LogoutTokenRejected):
        await validate_logout_token(sign(payload), provider_keys, expectations(now))


async def test_signature_by_another_key_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(LogoutTokenRejected, match="signature"):
        await validate_logout_token(sign(claims(now), OTHER_KEY), provider_keys, expectations(now))


async def test_alg_none_is_refused() -> None:
    now = int(time.time())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unsigned = jws.serialize_compact(
            {"alg": "none"}, json.dumps(claims(now)), None, algorithms=["none"]
        )
    with pytest.raises(LogoutTokenRejected, match="alg"):
        await validate_logout_token(unsigned, provider_keys, expectations(now))


async def test_an_id_token_is_not_a_logout_token() -> None:
    now = int(time.time())
    with pytest.raises(LogoutTokenRejected, match="typ"):
        await validate_logout_token(
            sign(claims(now), typ="JWT+id"), provider_keys, expectations(now)
        )
