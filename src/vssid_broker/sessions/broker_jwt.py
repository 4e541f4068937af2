"""JWTs the broker signs for itself: the app's access tokens and the staff tokens.

One way to sign and one way to verify, so every broker token gets the same checks: signed by
a key of the broker's own JWKS with the configured algorithm, `iss` the broker, `aud` and `typ`
the kind of token (RFC 8725 §3.11 explicit typing: an access token is never accepted where a
staff token is expected, nor the other way round), `exp` and `sub` present.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.config import Settings
from vssid_broker.sessions.keys import SigningKeys


class BrokerTokenRejected(Exception):
    """A token failed a check; `reason` says which, for the caller's own error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenKind:
    typ: str
    """The JOSE header's `typ`."""
    audience: str
    ttl_seconds: int


async def sign(
    session: AsyncSession,
    keys: SigningKeys,
    settings: Settings,
    kind: TokenKind,
    *,
    subject: str,
    now: datetime,
    claims: dict[str, Any],
) -> str:
    key = await keys.active(session, now)
    issued = int(now.timestamp())
    payload = {
        "iss": settings.public_base_url,
        "sub": subject,
        "aud": kind.audience,
        "iat": issued,
        "exp": issued + kind.ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    } | claims
    header = {"alg": key.alg, "kid": key.kid, "typ": kind.typ}
    return jwt.encode(header, payload, key.private, algorithms=[key.alg])


async def verify(
    session: AsyncSession,
    keys: SigningKeys,
    settings: Settings,
    kind: TokenKind,
    raw: str,
    now: datetime,
) -> dict[str, Any]:
    """The token's claims once every check passed; `BrokerTokenRejected` otherwise."""
    verification_keys = await keys.verification_keys(session, now)
    try:
        token = jwt.decode(raw, verification_keys, algorithms=[settings.signing_alg])
        # Leeway for `iat` and `nbf`: another broker process, a second behind the signer, must
        # not refuse a token issued a moment ago. `exp` is checked without it, below.
        JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=settings.token_clock_leeway_seconds,
            iss={"essential": True, "value": settings.public_base_url},
            aud={"essential": True, "value": kind.audience},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as error:
        raise BrokerTokenRejected(f"token rejected: {type(error).__name__}") from error
    if token.claims["exp"] <= now.timestamp():
        raise BrokerTokenRejected("token rejected: expired")
    if token.header.get("typ") != kind.typ:
        raise BrokerTokenRejected(f"not a {kind.typ} token")
    return dict(token.claims)
