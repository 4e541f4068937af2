"""ID-token rules on tokens made here, one rule at a time (no network)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from vssid_broker.errors.login import AssuranceTooLow, IdTokenRejected
from vssid_broker.federation.id_token import Expectations, validate_id_token

ISSUER = "https://vneid.example"
CLIENT = "vssid-broker"
NOW = int(time.time())
RSA_ONE = RSAKey.generate_key(2048, parameters={"kid": "one"})
RSA_TWO = RSAKey.generate_key(2048, parameters={"kid": "two"})


def expected(**changes: Any) -> Expectations:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT,
        "nonce": "n-123",
        "allowed_algs": ["RS256", "ES256"],
        "level2_acr_values": ["LoA2"],
        "now": NOW,
        "skew_seconds": 60,
    }
    return Expectations(**(values | changes))


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "subject-1",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "n-123",
        "acr": "LoA2",
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def sign(
    payload: dict[str, Any], key: Any = RSA_ONE, alg: str = "RS256", kid: str | None = "one"
) -> str:
    header = {"alg": alg} | ({"kid": kid} if kid else {})
    return jwt.encode(header, payload, key, algorithms=[alg])


def keys_of(*keys: Any) -> Any:
    async def source(_kid: str | None) -> KeySet:
        return KeySet(list(keys))

    return source


async def validate(token: str, *keys: Any, **changes: Any) -> dict[str, Any]:
    return await validate_id_token(token, keys_of(*(keys or (RSA_ONE,))), expected(**changes))


async def reason(token: str, *keys: Any, **changes: Any) -> str:
    with pytest.raises(IdTokenRejected) as refused:
        await validate(token, *keys, **changes)
    return refused.value.code


async def test_a_good_token_passes() -> None:
    assert (await validate(sign(claims())))["sub"] == "subject-1"


async def test_kid_absent_with_one_key_uses_it() -> None:
    assert await validate(sign(claims(), kid=None))


async def test_kid_absent_with_several_keys_tries_each_of_the_right_type() -> None:
    assert await validate(sign(claims(), key=RSA_TWO, kid=None), RSA_ONE, RSA_TWO)


async def test_kid_unknown_is_refused() -> None:
    assert await reason(sign(claims(), key=RSA_TWO, kid="two")) == "id_token_key_unknown"


async def test_signature_by_another_key_with_the_same_kid_is_refused() -> None:
    assert await reason(sign(claims(), key=RSA_TWO, kid="one")) == "id_token_signature_invalid"


@pytest.mark.filterwarnings('ignore:JWS algorithm "none" is deprecated')
async def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode({"alg": "none"}, claims(), None, algorithms=["none"])  # type: ignore[arg-type]  # what an attacker sends
    assert await reason(unsigned) == "id_token_alg_not_allowed"


async def test_hmac_over_the_public_key_is_refused() -> None:
    """The RS256→HS256 confusion: an HMAC keyed with the provider's public key."""
    public_pem = RSA_ONE.as_pem(private=False)
    forged = sign(claims(), key=OctKey(public_pem, public_pem), alg="HS256")  # importer refuses PEM
    assert await reason(forged) == "id_token_alg_not_allowed"
    # Even if HS256 were configured, no RSA key is ever used as an HMAC secret.
    assert await reason(forged, allowed_algs=["RS256", "HS256"]) == "id_token_key_unknown"


async def test_ec_alg_never_uses_an_rsa_key() -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "one"})
    assert await reason(sign(claims(), key=ec, alg="ES256")) == "id_token_key_unknown"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"iss": "https://other.example"}, "id_token_issuer_mismatch"),
        ({"aud": "someone-else"}, "id_token_audience_mismatch"),
        ({"aud": None}, "id_token_audience_mismatch"),
        ({"aud": [CLIENT, "other"]}, "id_token_azp_mismatch"),
        ({"aud": [CLIENT, "other"], "azp": "other"}, "id_token_azp_mismatch"),
        ({"exp": NOW - 61}, "id_token_expired"),
        ({"exp": None}, "id_token_expired"),
        ({"iat": NOW + 120}, "id_token_iat_invalid"),
        ({"iat": None}, "id_token_iat_invalid"),
        ({"nonce": "other"}, "id_token_nonce_mismatch"),
        ({"nonce": None}, "id_token_nonce_mismatch"),
        ({"sub": None}, "id_token_subject_missing"),
        ({"sub": ""}, "id_token_subject_missing"),
    ],
)
async def test_claim_rules(changes: dict[str, Any], code: str) -> None:
    assert await reason(sign(claims(**changes))) == code


async def test_several_audiences_with_our_azp_pass() -> None:
    assert await validate(sign(claims(aud=[CLIENT, "other"], azp=CLIENT)))


async def test_clock_skew_is_tolerated_within_the_setting() -> None:
    assert await validate(sign(claims(exp=NOW - 30, iat=NOW + 30)))


@pytest.mark.parametrize("acr", ["LoA1", None, "loa2"])
async def test_anything_but_level_two_is_refused(acr: str | None) -> None:
    with pytest.raises(AssuranceTooLow):
        await validate(sign(claims(acr=acr)))


async def test_max_age_requires_a_recent_auth_time() -> None:
    fresh = sign(claims(auth_time=NOW - 100))
    assert await validate(fresh, max_age_seconds=300)
    assert await reason(sign(claims()), max_age_seconds=300) == "id_token_auth_time_missing"
    stale = sign(claims(auth_time=NOW - 400))
    assert await reason(stale, max_age_seconds=300) == "id_token_auth_too_old"
