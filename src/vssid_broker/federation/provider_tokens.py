"""JWTs VNeID signs (ID tokens, logout tokens): the checks both kinds share.

The signature is verified by joserfc against the provider's JWKS, with the algorithm pinned
to what both configuration and discovery allow (never `none`, never an HMAC over a public key);
then the issuer and audience rules both specifications take from OpenID Connect Core §3.1.3.7.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from vssid_broker.errors.login import IdTokenRejected

KeySource = Callable[[str | None], Awaitable[KeySet]]
"""Returns the provider's keys; given a `kid` it does not hold, refetches them (rate-floored)."""

# Key types an algorithm may use: a token whose alg does not fit the key is refused
# (the RS256-to-HS256 confusion attack).
KEY_TYPE_FOR_ALG_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def reject(code: str, detail: str) -> IdTokenRejected:
    return IdTokenRejected(detail, code=code)


async def verify_signature(raw: str, keys: KeySource, allowed_algs: Sequence[str]) -> jwt.Token:
    """§3.1.3.7 rules 6–7: signed by the provider's key with an algorithm we allow."""
    try:
        header = jws.extract_compact(raw.encode()).protected
    except JoseError as error:
        raise reject("id_token_malformed", "ID token is not a compact JWS") from error
    alg = str(header.get("alg", ""))
    if alg not in allowed_algs:
        raise reject("id_token_alg_not_allowed", f"ID token alg {alg!r} is not allowed")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    candidates = _candidate_keys(await keys(kid), alg, kid)
    if not candidates:
        raise reject("id_token_key_unknown", "no provider key matches the ID token's kid/alg")
    for key in candidates:
        try:
            return jwt.decode(raw, key, algorithms=[alg])
        except BadSignatureError:
            continue
        except JoseError as error:
            raise reject("id_token_malformed", f"ID token cannot be decoded: {error}") from error
    raise reject("id_token_signature_invalid", "ID token signature does not verify")


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


def issuer_matches(claims: dict[str, Any], issuer: str) -> bool:
    """§3.1.3.7 rule 2: the issuer must be exactly the provider's."""
    return claims.get("iss") == issuer


def audiences_naming(claims: dict[str, Any], client_id: str) -> list[str] | None:
    """§3.1.3.7 rule 3: the token's audiences, if they include us; None otherwise."""
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        return None
    return audiences
