"""Signed tokens the provider issues: ID tokens (with optional scripted defects) and
back-channel logout tokens."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
import warnings
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OctKey, RSAKey

from .authorization import reachable_acr
from .citizens import Citizen, released_claims
from .faults import ID_TOKEN_FAULTS, WRONG_ISSUER
from .keys import SIGNING_ALG, new_rsa_key
from .state import AuthorizationCode, SimState

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _corrupt_signature(token: str) -> str:
    """Flip bits in the signature segment so it no longer verifies."""
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    raw[-1] ^= 0xFF
    return ".".join([header, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])


def id_token_claims(state: SimState, code: AuthorizationCode, citizen: Citizen) -> dict[str, Any]:
    now = int(state.now())
    request = code.request
    claims: dict[str, Any] = {
        "iss": state.settings.issuer,
        "sub": str(citizen.sub),
        "aud": request.client_id,
        "azp": request.client_id,
        "exp": now + state.settings.id_token_ttl_seconds,
        "iat": now,
        "auth_time": code.auth_time,
        # The citizen's real level whatever acr_values asked (a voluntary claim); an
        # essential acr was met before consent (login_pages.submit_login).
        "acr": reachable_acr(citizen.level, request.essential_acr) or citizen.acr,
        "amr": list(code.amr),
        "jti": str(uuid.uuid4()),
        # Front-Channel Logout §3 / Back-Channel Logout §2.4: the session the sign-in opened.
        "sid": code.sid,
    }
    if request.nonce is not None:
        claims["nonce"] = request.nonce
    claims.update(released_claims(citizen, request.scope))
    return claims


def issue_id_token(state: SimState, code: AuthorizationCode, citizen: Citizen) -> str:
    """Sign the ID token, applying any pending id_token_* faults (each consumed once)."""
    faults = state.faults.take_all(ID_TOKEN_FAULTS)
    claims = _apply_claim_faults(state, code, id_token_claims(state, code, citizen), faults)
    header, signing_key = _header_and_key(state, faults)
    if "id_token_alg_none" in faults:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            return jws.serialize_compact(
                {"typ": "JWT", "alg": "none"}, json.dumps(claims), None, algorithms=["none"]
            )
    if "id_token_hs256_public_key" in faults:
        # The key-confusion attack: HMAC keyed with the published RSA public key's PEM.
        # OctKey's importer refuses PEM input on purpose, so the key is built directly.
        pem = state.keys.signing_key.as_pem(private=False)
        confused_key = OctKey(pem, pem)
        return jwt.encode(
            {"alg": "HS256", "kid": state.keys.signing_key.kid},
            claims,
            confused_key,
            algorithms=["HS256"],
        )
    token = jwt.encode(header, claims, signing_key, algorithms=[SIGNING_ALG])
    if "id_token_bad_signature" in faults:
        token = _corrupt_signature(token)
    return token


def _apply_claim_faults(
    state: SimState, code: AuthorizationCode, claims: dict[str, Any], faults: set[str]
) -> dict[str, Any]:
    """The claim defects a client must catch when validating an ID token (OpenID Connect
    Core §3.1.3.7): issuer, audience, nonce, times, subject, acr."""
    ttl = state.settings.id_token_ttl_seconds
    now = int(state.now())
    if "id_token_wrong_iss" in faults:
        claims["iss"] = WRONG_ISSUER
    if "id_token_wrong_aud" in faults:
        claims["aud"] = "some-other-client"
    if "id_token_extra_aud_no_azp" in faults:
        claims["aud"] = [code.request.client_id, "some-other-client"]
        del claims["azp"]
    if "id_token_missing_nonce" in faults:
        claims.pop("nonce", None)
    if "id_token_wrong_nonce" in faults:
        claims["nonce"] = secrets.token_urlsafe(16)
    if "id_token_expired" in faults:
        claims["iat"] = now - ttl - 600
        claims["exp"] = now - 600
    if "id_token_iat_future" in faults:
        claims["iat"] = now + 3600
        claims["exp"] = now + 3600 + ttl
    if "id_token_missing_sub" in faults:
        del claims["sub"]
    if "id_token_wrong_acr" in faults:
        claims["acr"] = "LoA1"
    return claims


def _header_and_key(state: SimState, faults: set[str]) -> tuple[dict[str, Any], RSAKey]:
    """The JWS header and the signing key, with the `kid` faults a client must handle when
    picking the key from the JWKS (OpenID Connect Core §10.1)."""
    signing_key = state.keys.signing_key
    header: dict[str, Any] = {"alg": SIGNING_ALG, "kid": signing_key.kid}
    if "id_token_no_kid_single_key" in faults:
        del header["kid"]
    if "id_token_no_kid_multiple_keys" in faults:
        del header["kid"]
        if len(state.keys.published()) < 2:
            state.keys.publish_extra_key()
    if "id_token_unknown_kid" in faults:
        signing_key = new_rsa_key()
        header["kid"] = signing_key.kid
    return header, signing_key


def issue_logout_token(
    state: SimState, client_id: str, citizen: Citizen, sid: str | None = None
) -> str:
    """An OpenID Back-Channel Logout 1.0 logout token for one client: about the citizen, or
    with `sid` about one of their VNeID sessions (§2.4)."""
    now = int(state.now())
    key = state.keys.signing_key
    claims: dict[str, Any] = {
        "iss": state.settings.issuer,
        "aud": client_id,
        "sub": str(citizen.sub),
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    if sid is not None:
        claims["sid"] = sid
    header = {"alg": SIGNING_ALG, "kid": key.kid, "typ": "logout+jwt"}
    return jwt.encode(header, claims, key, algorithms=[SIGNING_ALG], default_type=None)
