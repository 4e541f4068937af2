"""Logout tokens from VNeID: OpenID Connect Back-Channel Logout 1.0 §2.6, rule by rule.

The signature, issuer and audience are checked exactly as for ID tokens (the provider's JWKS by
`kid`, the algorithm pinned, never `none`); then the claims that make a logout token a logout
token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vssid_broker.errors.login import IdTokenRejected
from vssid_broker.errors.tokens import LogoutTokenRejected
from vssid_broker.federation.provider_tokens import (
    KeySource,
    audiences_naming,
    issuer_matches,
    verify_signature,
)

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass(frozen=True)
class LogoutExpectations:
    issuer: str
    client_ids: Sequence[str]
    """The broker's registrations (browser, app): a logout token may address either."""
    allowed_algs: Sequence[str]
    now: int
    skew_seconds: int
    max_age_seconds: int


@dataclass(frozen=True)
class LogoutRequest:
    issuer: str
    subject: str | None
    """The person, when named: every session of theirs ends."""
    sid: str | None
    """VNeID's session, when named without a person: the sessions it started end."""
    jti: str
    expires_at: int
    """Until when the `jti` must be remembered to refuse a replay."""


async def validate_logout_token(
    raw: str, keys: KeySource, expected: LogoutExpectations
) -> LogoutRequest:
    # §2.6 rules 1–3: a JWS signed by the provider's key with an algorithm we allow.
    try:
        token = await verify_signature(raw, keys, expected.allowed_algs)
    except IdTokenRejected as error:
        raise LogoutTokenRejected(error.detail.replace("ID token", "logout token")) from error
    # §2.4: "logout+jwt" is the explicit type; a token typed as something else is not one.
    typ = token.header.get("typ")
    if typ is not None and str(typ).lower() not in ("logout+jwt", "application/logout+jwt"):
        raise LogoutTokenRejected(f"logout token typ {str(typ)[:30]!r} is not logout+jwt")
    return _check_claims(dict(token.claims), expected)


def _check_claims(claims: dict[str, Any], expected: LogoutExpectations) -> LogoutRequest:
    # §2.6 rule 4: iss, aud and iat as for ID tokens (OIDC Core §3.1.3.7).
    if not issuer_matches(claims, expected.issuer):
        raise LogoutTokenRejected("logout token iss is not the configured issuer")
    if all(audiences_naming(claims, client_id) is None for client_id in expected.client_ids):
        raise LogoutTokenRejected("logout token aud does not contain our client id")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or not (
        expected.now - expected.max_age_seconds <= iat <= expected.now + expected.skew_seconds
    ):
        raise LogoutTokenRejected("logout token iat is missing, too old or in the future")
    exp = claims.get("exp")
    if exp is not None and (
        not isinstance(exp, int | float) or exp + expected.skew_seconds <= expected.now
    ):
        raise LogoutTokenRejected("logout token is expired")
    # §2.6 rule 5: sub or sid (or both; then the person is logged out everywhere).
    subject = _text_claim(claims, "sub")
    sid = _text_claim(claims, "sid")
    if subject is None and sid is None:
        raise LogoutTokenRejected("logout token has neither sub nor sid")
    # §2.6 rule 6: the events claim names the back-channel logout event with a JSON object.
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise LogoutTokenRejected("logout token events lack the back-channel logout event")
    # §2.6 rule 7: a nonce would make it look like an ID token; it must not have one.
    if "nonce" in claims:
        raise LogoutTokenRejected("logout token carries a nonce")
    # §2.6 rule 8 (via §2.4): jti is required, for replay detection.
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 200:
        raise LogoutTokenRejected("logout token has no usable jti")
    remember_until = int(exp) if isinstance(exp, int | float) else int(iat)
    return LogoutRequest(
        issuer=expected.issuer,
        subject=subject,
        sid=sid,
        jti=jti,
        expires_at=max(remember_until, int(iat) + expected.max_age_seconds) + expected.skew_seconds,
    )


def _text_claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None
