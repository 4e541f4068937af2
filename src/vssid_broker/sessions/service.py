"""Rules across both kinds of session: end every session of an account, single-use `jti`s.

Called when a person signs out everywhere, when VNeID says the person logged out or was locked
(back-channel logout), and by whatever locks or unlinks an account: the browser sessions and
the app's refresh families end in the caller's transaction, and the app's access tokens stop
working at the broker's own endpoints at once (their `sid` no longer names a live family).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from vssid_broker.audit import service as audit
from vssid_broker.config import Settings
from vssid_broker.context import BrokerContext
from vssid_broker.federation.logout_token import (
    LogoutExpectations,
    LogoutTokenRejected,
    validate_logout_token,
)
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.models import BrowserSession, RefreshToken, UsedJti
from vssid_broker.sessions.replay import JtiReplayed, remember_jti
from vssid_broker.sessions.tokens import InvalidAccessToken, TokenService


@dataclass(frozen=True)
class EndedSessions:
    browser: int
    app_families: int


async def end_all_for_account(
    session: AsyncSession, tokens: TokenService, account_id: int, now: datetime
) -> EndedSessions:
    browser = await browser_sessions.end_all(session, account_id, now)
    families = await tokens.revoke_account_families(session, account_id, now)
    return EndedSessions(browser, families)


async def _end_all_and_record(
    session: AsyncSession, ctx: BrokerContext, account_id: int, *, why: str, request_id: str
) -> EndedSessions:
    """End every session of the account and say why in the audit trail, in `session`."""
    now = ctx.clock()
    ended = await end_all_for_account(session, ctx.tokens, account_id, now)
    audit.record(
        session,
        event_type="sessions.ended",
        outcome=why,
        now=now,
        account_id=account_id,
        request_id=request_id,
        browser_sessions=ended.browser,
        app_sessions=ended.app_families,
    )
    return ended


# --- VNeID back-channel logout ------------------------------------------------------------------
LOGOUT_TOKEN_MAX_AGE_SECONDS = 300
"""Back-Channel Logout §2.6 lets us refuse old tokens; VNeID sends them as the event happens."""


async def vneid_backchannel_logout(
    ctx: BrokerContext, raw_logout_token: str, request_id: str
) -> EndedSessions | None:
    """Validate VNeID's logout token and end every session of that person at once.

    Returns None when the person has no VssID account linked (nothing to end). The `jti`, the
    ended sessions and the audit event are written in one transaction.
    """
    settings, now = ctx.settings, ctx.clock()
    metadata = await ctx.provider.metadata()
    request = await validate_logout_token(
        raw_logout_token,
        lambda kid: ctx.provider.signing_keys(refresh_for_kid=kid),
        LogoutExpectations(
            issuer=metadata.issuer,
            client_id=settings.vneid_client_id,
            allowed_algs=[a for a in settings.vneid_signing_algs if a in metadata.id_token_algs],
            now=int(now.timestamp()),
            skew_seconds=settings.id_token_clock_skew_seconds,
            max_age_seconds=LOGOUT_TOKEN_MAX_AGE_SECONDS,
        ),
    )
    async with ctx.db.begin() as session:
        try:
            await remember_jti(
                session,
                purpose="logout_token",
                jti=request.jti,
                expires_at=datetime.fromtimestamp(request.expires_at, UTC),
            )
        except JtiReplayed as error:
            raise LogoutTokenRejected("logout token jti was already used") from error
        account_id = await session.scalar(
            select(FederatedLink.account_id).where(
                FederatedLink.provider == request.issuer,
                FederatedLink.subject == request.subject,
            )
        )
        if account_id is None:
            return None
        ended = await _end_all_and_record(
            session, ctx, account_id, why="vneid_backchannel_logout", request_id=request_id
        )
    return ended


# --- introspection (RFC 7662) -------------------------------------------------------------------
async def introspect(ctx: BrokerContext, raw: str) -> dict[str, Any]:
    """RFC 7662 §2.2: the claims of an active access token, else only `active: false`.

    Only access tokens are answered: other services never hold the app's refresh tokens, and
    saying nothing about them keeps a stolen one from being tested here.
    """
    async with ctx.autocommit() as session:
        try:
            caller = await ctx.tokens.verify_access_token(session, raw, ctx.clock())
        except InvalidAccessToken:
            return {"active": False}
    claims = caller.raw
    token_type = "DPoP" if caller.dpop_jkt else "Bearer"
    answer: dict[str, Any] = {"active": True, "token_type": token_type}
    for name in ("iss", "sub", "aud", "exp", "iat", "jti", "acr", "amr", "channel", "sid", "cnf"):
        if name in claims:
            answer[name] = claims[name]
    return answer


# --- the person's own sessions ------------------------------------------------------------------
@dataclass(frozen=True)
class SessionView:
    id: str
    channel: str
    device: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


async def list_sessions(ctx: BrokerContext, account_id: int) -> list[SessionView]:
    now, settings = ctx.clock(), ctx.settings
    async with ctx.db() as session:
        browsers = await browser_sessions.active(
            session, account_id, now, idle_seconds=settings.browser_session_idle_seconds
        )
        families = await ctx.tokens.live_families(session, account_id, now)
    views = [
        SessionView(
            b.public_id, "browser", b.user_agent, b.created_at, b.last_used_at, b.expires_at
        )
        for b in browsers
    ] + [
        SessionView(f.family_id, "app", f.user_agent, f.created_at, f.last_used_at, f.expires_at)
        for f in families
    ]
    return sorted(views, key=lambda view: view.last_used_at, reverse=True)


async def end_session(
    ctx: BrokerContext, account_id: int, session_id: str, request_id: str
) -> bool:
    """End one of the person's own sessions; False when no live session of theirs has that id."""
    now = ctx.clock()
    async with ctx.db.begin() as session:
        ended = await browser_sessions.end_one(
            session, account_id, session_id, now
        ) or await ctx.tokens.revoke_account_family(session, account_id, session_id, now)
        if ended:
            audit.record(
                session,
                event_type="sessions.ended",
                outcome="ended_by_person",
                now=now,
                account_id=account_id,
                request_id=request_id,
                session_id=session_id,
            )
    return ended


async def end_every_session(ctx: BrokerContext, account_id: int, request_id: str) -> EndedSessions:
    async with ctx.db.begin() as session:
        return await _end_all_and_record(
            session, ctx, account_id, why="all_ended_by_person", request_id=request_id
        )


# --- housekeeping -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Purged:
    used_jtis: int
    browser_sessions: int
    refresh_tokens: int
    """Tokens of families past their absolute end."""
    rotated_refresh_tokens: int
    """Spent tokens of live families, past the reuse-detection window."""


async def purge_expired(session: AsyncSession, now: datetime, settings: Settings) -> Purged:
    """Delete rows that can no longer matter: `jti`s past their replay window, browser sessions
    and refresh-token families past their absolute end (every token of a family shares its
    `expires_at`, so families go whole), and spent refresh tokens rotated longer ago than the
    reuse-detection window (a family keeps a row per rotation; its first and its newest, live
    one stay).
    The audit trail keeps the history."""
    reuse_window = timedelta(seconds=settings.refresh_token_reuse_detection_seconds)
    jtis = await session.execute(delete(UsedJti).where(UsedJti.expires_at <= now))
    browsers = await session.execute(delete(BrowserSession).where(BrowserSession.expires_at <= now))
    refresh = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now))
    first_of_family = aliased(RefreshToken)
    rotated = await session.execute(
        delete(RefreshToken).where(
            RefreshToken.rotated_at <= now - reuse_window,
            # The family's first token stays: it dates the sign-in (the person's session list,
            # which installation is oldest when the per-account bound ends one).
            RefreshToken.issued_at
            > select(func.min(first_of_family.issued_at))
            .where(first_of_family.family_id == RefreshToken.family_id)
            .scalar_subquery(),
        )
    )
    return Purged(
        int(jtis.rowcount or 0),  # type: ignore[attr-defined]
        int(browsers.rowcount or 0),  # type: ignore[attr-defined]
        int(refresh.rowcount or 0),  # type: ignore[attr-defined]
        int(rotated.rowcount or 0),  # type: ignore[attr-defined]
    )
