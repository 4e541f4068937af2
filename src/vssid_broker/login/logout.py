"""Logout stories: VNeID says the person logged out (back-channel, or front-channel through
the browser), the person ends one of their sessions or all of them. Each ends sessions and
records why in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.context import BrokerContext
from vssid_broker.errors.tokens import FrontChannelLogoutRejected, LogoutTokenRejected
from vssid_broker.federation.callback import allowed_algs
from vssid_broker.federation.logout_token import LogoutExpectations, validate_logout_token
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.replay import JtiReplayed, remember_jti

LOGOUT_TOKEN_MAX_AGE_SECONDS = 300
"""Back-Channel Logout §2.6 lets us refuse old tokens; VNeID sends them as the event happens."""


async def vneid_backchannel_logout(
    ctx: BrokerContext, raw_logout_token: str, request_id: str
) -> sessions.EndedSessions | None:
    """Validate VNeID's logout token and end every session of that person at once.

    A token naming the person (`sub`) ends every session of theirs; one naming only VNeID's
    session (`sid`) ends the browser sessions that session started. Returns None when nothing
    was signed in. The `jti`, the ended sessions and the audit event are written in one
    transaction.
    """
    settings, now = ctx.settings, ctx.clock()
    metadata = await ctx.provider.metadata()
    request = await validate_logout_token(
        raw_logout_token,
        lambda kid: ctx.provider.signing_keys(refresh_for_kid=kid),
        LogoutExpectations(
            issuer=metadata.issuer,
            client_ids=settings.vneid_client_ids,
            allowed_algs=allowed_algs(settings, metadata),
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
        if request.subject is None:
            assert request.sid is not None  # the token names one or the other
            return await _end_vneid_session(
                session, ctx, request.sid, why="vneid_backchannel_logout", request_id=request_id
            )
        account_id = await session.scalar(
            select(FederatedLink.account_id).where(
                FederatedLink.provider == request.issuer,
                FederatedLink.subject == request.subject,
            )
        )
        if account_id is None:
            return None
        return await _end_all_and_record(
            session, ctx, account_id, why="vneid_backchannel_logout", request_id=request_id
        )


async def vneid_frontchannel_logout(
    ctx: BrokerContext, iss: str | None, sid: str | None, request_id: str
) -> sessions.EndedSessions | None:
    """OpenID Connect Front-Channel Logout 1.0 §3: VNeID's logged-out page loads our URI with
    its `iss` and the `sid` of the session that ended; every browser session that VNeID session
    started ends. Without both (or with another issuer) nothing ends: a page anyone can embed
    must not log people out on a guess."""
    metadata = await ctx.provider.metadata()
    if not sid or len(sid) > 255:
        raise FrontChannelLogoutRejected("front-channel logout without a usable sid")
    if iss != metadata.issuer:  # exactly, as for every token of VNeID's
        raise FrontChannelLogoutRejected("front-channel logout iss is not the configured issuer")
    async with ctx.db.begin() as session:
        return await _end_vneid_session(
            session, ctx, sid, why="vneid_frontchannel_logout", request_id=request_id
        )


async def _end_vneid_session(
    session: AsyncSession, ctx: BrokerContext, sid: str, *, why: str, request_id: str
) -> sessions.EndedSessions | None:
    """End the browser sessions VNeID's session `sid` started, one audit event per account."""
    now = ctx.clock()
    account_ids = await browser_sessions.end_for_vneid_session(session, sid, now)
    for account_id in sorted(set(account_ids)):
        ended = sessions.EndedSessions(account_ids.count(account_id), 0)
        _record_ended(session, account_id, ended, why=why, now=now, request_id=request_id)
    return sessions.EndedSessions(len(account_ids), 0) if account_ids else None


async def end_session(
    ctx: BrokerContext, account_id: int, session_id: str, request_id: str
) -> bool:
    """End one of the person's own sessions; False when no live session of theirs has that id."""
    now = ctx.clock()
    async with ctx.db.begin() as session:
        ended = await sessions.end_one(session, ctx.refresh_tokens, account_id, session_id, now)
        if ended:
            audit.record(
                session,
                event_type=AuditEventType.SESSIONS_ENDED,
                outcome="ended_by_person",
                now=now,
                account_id=account_id,
                request_id=request_id,
                session_id=session_id,
            )
    return ended


async def end_every_session(
    ctx: BrokerContext, account_id: int, request_id: str
) -> sessions.EndedSessions:
    async with ctx.db.begin() as session:
        return await _end_all_and_record(
            session, ctx, account_id, why="all_ended_by_person", request_id=request_id
        )


async def _end_all_and_record(
    session: AsyncSession, ctx: BrokerContext, account_id: int, *, why: str, request_id: str
) -> sessions.EndedSessions:
    """End every session of the account and say why in the audit trail, in `session`."""
    now = ctx.clock()
    ended = await sessions.end_all_for_account(session, ctx.refresh_tokens, account_id, now)
    _record_ended(session, account_id, ended, why=why, now=now, request_id=request_id)
    return ended


def _record_ended(
    session: AsyncSession,
    account_id: int,
    ended: sessions.EndedSessions,
    *,
    why: str,
    now: datetime,
    request_id: str,
) -> None:
    """The audit step of every logout that ends sessions: whose, why, how many of each kind."""
    audit.record(
        session,
        event_type=AuditEventType.SESSIONS_ENDED,
        outcome=why,
        now=now,
        account_id=account_id,
        request_id=request_id,
        browser_sessions=ended.browser,
        app_sessions=ended.app_families,
    )
