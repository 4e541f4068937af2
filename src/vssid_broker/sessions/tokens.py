"""The app's token pair: an access token with the refresh token of its family.

What happens to the pair as a whole — issued at sign-in, renewed at a refresh, revoked
(RFC 7009) — composes the two kinds of token; each kind keeps its own rules in its module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker import metrics
from vssid_broker.errors.tokens import InvalidAccessToken
from vssid_broker.sessions.access_tokens import AccessTokens
from vssid_broker.sessions.refresh_tokens import RefreshTokens


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    token_type: str = "Bearer"
    """"DPoP" when both tokens are bound to the app's key (RFC 9449 §5)."""


def token_type(dpop_jkt: str | None) -> str:
    return "DPoP" if dpop_jkt is not None else "Bearer"


async def issue(
    session: AsyncSession,
    access: AccessTokens,
    refresh: RefreshTokens,
    *,
    account_id: int,
    acr: str,
    now: datetime,
    auth_time: datetime | None = None,
    user_agent: str | None = None,
    dpop_jkt: str | None = None,
) -> IssuedTokens:
    """A new family (one signed-in app installation) and its first access token."""
    refresh_token, family_id = await refresh.start_family(
        session,
        account_id=account_id,
        acr=acr,
        auth_time=auth_time,
        now=now,
        user_agent=user_agent,
        dpop_jkt=dpop_jkt,
    )
    access_token = await access.issue(
        session,
        account_id=account_id,
        acr=acr,
        auth_time=auth_time,
        channel="app",
        now=now,
        family_id=family_id,
        dpop_jkt=dpop_jkt,
    )
    return IssuedTokens(access_token, access.kind.ttl_seconds, refresh_token, token_type(dpop_jkt))


async def renew(
    session: AsyncSession,
    access: AccessTokens,
    refresh: RefreshTokens,
    raw: str,
    now: datetime,
    *,
    dpop_jkt: str | None = None,
) -> IssuedTokens | None:
    """The refresh grant: a new pair for a spendable refresh token; None when it cannot be
    spent (`RefreshTokens.refuse` then says why)."""
    rotated = await refresh.rotate(session, raw, now, dpop_jkt=dpop_jkt)
    if rotated is None:
        rotated = await refresh.replay_lost_answer(session, raw, now, dpop_jkt=dpop_jkt)
    if rotated is None:
        return None
    access_token = await access.issue(
        session,
        account_id=rotated.account_id,
        acr=rotated.acr,
        # RFC 9470 §4: a refresh is not an authentication; the original time stays.
        auth_time=rotated.auth_time,
        channel="app",
        now=now,
        family_id=rotated.family_id,
        dpop_jkt=rotated.dpop_jkt,
    )
    return IssuedTokens(
        access_token,
        access.kind.ttl_seconds,
        rotated.refresh_token,
        token_type(rotated.dpop_jkt),
    )


async def revoke(
    session: AsyncSession, access: AccessTokens, refresh: RefreshTokens, raw: str, now: datetime
) -> int | None:
    """RFC 7009: revoking a refresh token, or an access token, ends the whole family (the
    app's signed-in session). Returns the account id."""
    row = await refresh.find(session, raw)
    if row is not None:
        await refresh.revoke_family(session, row.family_id, now)
        metrics.REVOCATIONS.labels("app_revoked").inc()
        return row.account_id
    try:
        claims = await access.verify(session, raw, now)
    except InvalidAccessToken:
        return None  # unknown, expired or already ended: nothing left to revoke
    await refresh.revoke_family(session, claims.session_id, now)
    metrics.REVOCATIONS.labels("app_revoked").inc()
    return claims.account_id
