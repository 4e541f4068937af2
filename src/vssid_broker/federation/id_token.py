"""ID-token validation: every check of OpenID Connect Core §3.1.3.7 as a named rule.

The signature is verified by joserfc against the provider's JWKS, with the algorithm pinned
to what both configuration and discovery allow (never `none`, never an HMAC over a public key).
Each rule raises `IdTokenRejected` with its own stable code, so an auditor can see which rule
fired and a test can prove each one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from vssid_broker.federation.errors import AssuranceTooLow, IdTokenRejected

KeySource = Callable[[str | None], Awaitable[KeySet]]
"""Returns the provider's keys; given a `kid` it does not hold, refetches them (rate-floored)."""

# Key types an algorithm may use: a token whose alg does not fit the key is refused
# (the RS256-to-HS256 confusion attack).
KEY_TYPE_FOR_ALG_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


@dataclass(frozen=True)
class Expectations:
    issuer: str
    client_id: str
    nonce: str
    allowed_algs: Sequence[str]
    level2_acr_values: Sequence[str]
    now: int
    skew_seconds: int
    max_age_seconds: int | None = None


def _reject(code: str, detail: str) -> IdTokenRejected:
    return IdTokenRejected(detail, code=code)


async def verify_signature(raw: str, keys: KeySource, allowed_algs: Sequence[str]) -> jwt.Token:
    """§3.1.3.7 rules 6–7: signed by the provider's key with an algorithm we allow."""
    try:
        header = jws.extract_compact(raw.encode()).protected
    except JoseError as error:
        raise _reject("id_token_malformed", "ID token is not a compact JWS") from error
    alg = str(header.get("alg", ""))
    if alg not in allowed_algs:
        raise _reject("id_token_alg_not_allowed", f"ID token alg {alg!r} is not allowed")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    candidates = _candidate_keys(await keys(kid), alg, kid)
    if not candidates:
        raise _reject("id_token_key_unknown", "no provider key matches the ID token's kid/alg")
    for key in candidates:
        try:
            return jwt.decode(raw, key, algorithms=[alg])
        except BadSignatureError:
            continue
        except JoseError as error:
            raise _reject("id_token_malformed", f"ID token cannot be decoded: {error}") from error
    raise _reject("id_token_signature_invalid", "ID token signature does not verify")


def _candidate_keys(key_set: KeySet, alg: str, kid: str | None) -> list[Any]:
    key_type = KEY_TYPE_FOR_ALG_PREFIX.get(alg[:2])
    usable = [
        key for key in key_set.keys if key.key_type == key_type and key.get("use", "sig") == "sig"
    ]
    if kid is not None:
        return [key for key in usable if key.kid == kid]
    # Without a kid: one usable key is unambiguous; with several we try each (both are
    # allowed by the rp-id_token-kid-absent-* conformance cases), never keys of another type.
    return usable


def check_claims(claims: dict[str, Any], expected: Expectations) -> None:
    """The claim rules of §3.1.3.7, in the spec's order."""
    # Rule 2: the issuer must be exactly the provider's.
    if claims.get("iss") != expected.issuer:
        raise _reject("id_token_issuer_mismatch", "ID token iss is not the configured issuer")
    # Rule 3: we must be an audience; rules 4–5: several audiences need azp naming us.
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or expected.client_id not in audiences:
        raise _reject("id_token_audience_mismatch", "ID token aud does not contain our client id")
    if len(audiences) > 1 and claims.get("azp") != expected.client_id:
        raise _reject("id_token_azp_mismatch", "ID token has several audiences but no azp for us")
    if "azp" in claims and claims["azp"] != expected.client_id:
        raise _reject("id_token_azp_mismatch", "ID token azp is not our client id")
    # Rule 9: not expired (with the configured clock skew).
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + expected.skew_seconds <= expected.now:
        raise _reject("id_token_expired", "ID token is expired or has no exp")
    # Rule 10: issued at a sensible time — present, and not in the future beyond the skew.
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat - expected.skew_seconds > expected.now:
        raise _reject("id_token_iat_invalid", "ID token iat is missing or in the future")
    # Rule 11: the nonce we sent, bound to this login transaction (replay defence).
    if claims.get("nonce") != expected.nonce:
        raise _reject("id_token_nonce_mismatch", "ID token nonce does not match the login")
    # §2: sub is REQUIRED and identifies the person at the provider.
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _reject("id_token_subject_missing", "ID token has no sub")
    # Rule 13: when max_age was sent, auth_time is required and must be recent enough.
    if expected.max_age_seconds is not None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float):
            raise _reject("id_token_auth_time_missing", "max_age was sent but auth_time is absent")
        if auth_time + expected.max_age_seconds + expected.skew_seconds < expected.now:
            raise _reject("id_token_auth_too_old", "the sign-in at VNeID is older than max_age")
    # Rule 12: we asked for level 2 via acr_values; accept nothing less.
    if claims.get("acr") not in expected.level2_acr_values:
        raise AssuranceTooLow(f"acr {str(claims.get('acr'))[:40]!r} is not level 2")


async def validate_id_token(raw: str, keys: KeySource, expected: Expectations) -> dict[str, Any]:
    token = await verify_signature(raw, keys, expected.allowed_algs)
    claims = dict(token.claims)
    check_claims(claims, expected)
    return claims
