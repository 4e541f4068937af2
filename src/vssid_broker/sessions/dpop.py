"""DPoP proofs (RFC 9449): the app proves it holds the private key its tokens are bound to.

Every check of §4.3 is a named rule; the proof's `jti` is remembered in the database (primary
key), so a proof replayed to any broker process is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.config import Settings
from vssid_broker.errors.tokens import InvalidDpopProof
from vssid_broker.sessions.replay import JtiReplayed, remember_jti

# §4.3 rule 5: asymmetric algorithms only; never `none`, never an HMAC.
ASYMMETRIC_ALGS = frozenset({"ES256", "ES384", "EdDSA", "RS256", "PS256"})
PUBLIC_KEY_TYPES = (ECKey, OKPKey, RSAKey)


@dataclass(frozen=True)
class VerifiedProof:
    jkt: str
    """RFC 7638 thumbprint of the proof's public key: what tokens are bound to (`cnf.jkt`)."""


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url(SHA-256(access token))."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def target_uri(url: str) -> str:
    """§4.3 rule 9: compare without query and fragment, scheme and host case-insensitively."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))


def _same_target(htu: str, url: str) -> bool:
    try:
        return target_uri(htu) == target_uri(url)
    except ValueError:  # not a URL at all (an unclosed IPv6 bracket, a bad port)
        return False


async def check_proof(
    session: AsyncSession,
    proofs: list[str],
    *,
    method: str,
    url: str,
    now: datetime,
    settings: Settings,
    access_token: str | None = None,
) -> VerifiedProof:
    """All rules of RFC 9449 §4.3; with `access_token`, also `ath` (§7.1)."""
    # Rule 1: exactly one DPoP header.
    if len(proofs) != 1:
        raise InvalidDpopProof("exactly one DPoP header is required")
    proof = proofs[0]
    # Rule 2: a well-formed compact JWS.
    try:
        header = jws.extract_compact(proof.encode()).protected
    except (JoseError, ValueError) as error:
        raise InvalidDpopProof("DPoP proof is not a compact JWS") from error
    # Rule 4: typ is dpop+jwt.
    if header.get("typ") != "dpop+jwt":
        raise InvalidDpopProof("DPoP proof typ is not dpop+jwt")
    # Rule 5: an asymmetric algorithm we support.
    alg = str(header.get("alg", ""))
    if alg not in ASYMMETRIC_ALGS:
        raise InvalidDpopProof(f"DPoP proof alg {alg[:20]!r} is not an allowed asymmetric alg")
    # Rule 7: the public key is in the header, and is not a private key.
    key_data = header.get("jwk")
    if not isinstance(key_data, dict) or "d" in key_data:
        raise InvalidDpopProof("DPoP proof jwk is missing or carries a private key")
    try:
        key = JWKRegistry.import_key(key_data)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidDpopProof("DPoP proof jwk is not a valid public key") from error
    if not isinstance(key, PUBLIC_KEY_TYPES):
        raise InvalidDpopProof("DPoP proof jwk is not an asymmetric key")
    # Rule 6: the signature verifies with that key.
    try:
        verified = jws.deserialize_compact(proof, key, algorithms=[alg])
        claims: dict[str, Any] = json.loads(verified.payload)
    except (JoseError, ValueError) as error:
        raise InvalidDpopProof("DPoP proof signature does not verify") from error
    if not isinstance(claims, dict):
        raise InvalidDpopProof("DPoP proof payload is not a JSON object")
    # Rule 8: the method of this request.
    if claims.get("htm") != method:
        raise InvalidDpopProof("DPoP proof htm does not match the request method")
    # Rule 9: the URI of this request.
    htu = claims.get("htu")
    if not isinstance(htu, str) or not _same_target(htu, url):
        raise InvalidDpopProof("DPoP proof htu does not match the request URI")
    # Rule 11: created recently (we use iat, without server nonces).
    iat = claims.get("iat")
    window = settings.dpop_proof_max_age_seconds
    skew = settings.id_token_clock_skew_seconds
    moment = int(now.timestamp())
    if not isinstance(iat, int | float) or not (moment - window <= iat <= moment + skew):
        raise InvalidDpopProof("DPoP proof iat is missing, too old or in the future")
    # Rule 12 (§7.1): with an access token, the proof must carry its hash.
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidDpopProof("DPoP proof ath is missing or does not match the access token")
    # §11.1: each proof is used once; remembered until it could no longer pass rule 11.
    jti = claims.get("jti")
    # Printable only: the jti is stored, and PostgreSQL refuses a NUL in text.
    if not isinstance(jti, str) or not jti or len(jti) > 200 or not jti.isprintable():
        raise InvalidDpopProof("DPoP proof has no usable jti")
    try:
        await remember_jti(
            session,
            purpose="dpop",
            jti=jti,
            expires_at=datetime.fromtimestamp(int(iat) + window + skew, UTC),
        )
    except JtiReplayed as error:
        raise InvalidDpopProof("DPoP proof jti was already used") from error
    return VerifiedProof(jkt=key.thumbprint())


class InvalidDpopProofAtResource(InvalidDpopProof):
    """At a protected resource the same refusal is a 401 with a challenge (RFC 9449 §7.1)
    naming the algorithms we accept."""

    status = 401
    headers = {  # noqa: RUF012 - read-only
        "WWW-Authenticate": (
            f'DPoP error="invalid_dpop_proof", algs="{" ".join(sorted(ASYMMETRIC_ALGS))}"'
        )
    }
