"""Rules across both kinds of session: end one or every session of an account, list them, answer
introspection, purge what has expired.

`end_all_for_account` is called when a person signs out everywhere, when VNeID says the person
logged out or was locked (back-channel logout), and by whatever locks or unlinks an account: the
browser sessions and the app's refresh families end in the caller's transaction, and the app's
access tokens stop working at the broker's own endpoints at once (their `sid` no longer names a
live family).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from vssid_broker import metrics
from vssid_broker.config import Settings
from vssid_broker.sessions import browser as browser_sessions
from vssid_broker.sessions.access_tokens import AccessTokenClaims
from vssid_broker.sessions.devices import device_name
from vssid_broker.sessions.models import BrowserSession, RefreshToken, UsedJti
from vssid_broker.sessions.refresh_tokens import FamilyView, RefreshTokens
from vssid_broker.sessions.schemas import EndCause, SessionHistory, SessionView


@dataclass(frozen=True)
class EndedSessions:
    browser: int
    app_families: int


async def end_all_for_account(
    session: AsyncSession, refresh: RefreshTokens, account_id: int, now: datetime
) -> EndedSessions:
    return await end_all_for_accounts(session, refresh, [account_id], now)


_ACCOUNTS_PER_STATEMENT = 10_000
"""Below the drivers' limit of bound parameters in one statement."""


async def end_all_for_accounts(
    session: AsyncSession, refresh: RefreshTokens, account_ids: Sequence[int], now: datetime
) -> EndedSessions:
    """`end_all_for_account` for many accounts at once (an import that locks thousands): one
    statement per kind of session, not one per account."""
    browser = families = 0
    for at in range(0, len(account_ids), _ACCOUNTS_PER_STATEMENT):
        some = account_ids[at : at + _ACCOUNTS_PER_STATEMENT]
        browser += await browser_sessions.end_all_of(session, some, now)
        families += await refresh.revoke_families_of(session, some, now)
    if account_ids:
        metrics.REVOCATIONS.labels("all_for_account").inc(len(account_ids))
    return EndedSessions(browser, families)


# --- introspection (RFC 7662) -------------------------------------------------------------------
def introspection_answer(caller: AccessTokenClaims) -> dict[str, Any]:
    """RFC 7662 §2.2: the claims of an active access token. Anything else (not an access
    token, or not live) is answered with only `{"active": false}`: other services never
    hold the app's refresh tokens, and saying nothing about them keeps a stolen one from being
    tested here."""
    claims = caller.raw
    token_type = "DPoP" if caller.dpop_jkt else "Bearer"
    answer: dict[str, Any] = {"active": True, "token_type": token_type}
    for name in ("iss", "sub", "aud", "exp", "iat", "jti", "acr", "amr", "channel", "sid", "cnf"):
        if name in claims:
            answer[name] = claims[name]
    return answer


# --- the person's own sessions ------------------------------------------------------------------
async def list_sessions(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    now: datetime,
    *,
    browser_idle_seconds: int,
) -> list[SessionView]:
    """The person's signed-in browsers and app installations, last used first."""
    browsers = await browser_sessions.active(
        session, account_id, now, idle_seconds=browser_idle_seconds
    )
    families = await refresh.live_families(session, account_id, now)
    views = [_view(b.public_id, "browser", b) for b in browsers] + [
        _view(f.family_id, "app", f) for f in families
    ]
    return sorted(views, key=lambda view: view.last_used_at, reverse=True)


def _view(id_: str, channel: str, row: BrowserSession | FamilyView) -> SessionView:
    return SessionView(
        id=id_,
        channel=channel,
        device=row.user_agent,
        device_name=device_name(row.user_agent),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


def _history(
    view: SessionView,
    now: datetime,
    *,
    revoked_at: datetime | None,
    idle_ends_at: datetime,
) -> SessionHistory:
    """The session with when and why it ended: the first of its ends that has come."""
    candidates: tuple[tuple[datetime | None, EndCause], ...] = (
        (revoked_at, "revoked"),
        (view.expires_at, "expired"),
        (idle_ends_at, "idle"),
    )
    ends = [(at, cause) for at, cause in candidates if at is not None and at <= now]
    ended_at, ended_because = min(ends) if ends else (None, None)
    return SessionHistory(**view.model_dump(), ended_at=ended_at, ended_because=ended_because)


async def sessions_held(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    now: datetime,
    *,
    browser_idle_seconds: int,
) -> list[SessionHistory]:
    """Every session of the account still held, live or ended and not yet purged, newest
    first: what the person's export lists (their list of sessions shows the live ones only)."""
    browser_idle = timedelta(seconds=browser_idle_seconds)
    browsers = await session.scalars(
        select(BrowserSession).where(BrowserSession.account_id == account_id)
    )
    views = [
        _history(
            _view(row.public_id, "browser", row),
            now,
            revoked_at=row.revoked_at,
            idle_ends_at=row.last_used_at + browser_idle,
        )
        for row in browsers
    ] + [
        _history(
            _view(family.family_id, "app", family),
            now,
            revoked_at=revoked_at,
            idle_ends_at=family.last_used_at + refresh.idle_lifetime,
        )
        for family, revoked_at in await refresh.account_families(session, account_id)
    ]
    return sorted(views, key=lambda view: view.created_at, reverse=True)


async def end_one(
    session: AsyncSession, refresh: RefreshTokens, account_id: int, session_id: str, now: datetime
) -> bool:
    """End one of the account's own sessions; False when none of its live sessions has that id."""
    return await browser_sessions.end_one(
        session, account_id, session_id, now
    ) or await refresh.revoke_account_family(session, account_id, session_id, now)


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
