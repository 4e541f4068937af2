"""Browser sessions: a random cookie value, stored server-side only as its hash."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.sessions.models import BrowserSession
from vssid_broker.sessions.tokens import hash_token

SESSION_COOKIE = "vssid_session"


def start(
    session: AsyncSession, *, account_id: int, acr: str, now: datetime, ttl_seconds: int
) -> str:
    raw = secrets.token_urlsafe(32)
    session.add(
        BrowserSession(
            session_hash=hash_token(raw),
            account_id=account_id,
            acr=acr,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return raw


async def find(session: AsyncSession, raw: str | None, now: datetime) -> BrowserSession | None:
    if not raw:
        return None
    return await session.scalar(
        select(BrowserSession).where(
            BrowserSession.session_hash == hash_token(raw),
            BrowserSession.revoked_at.is_(None),
            BrowserSession.expires_at > now,
        )
    )


async def end(session: AsyncSession, raw: str | None, now: datetime) -> int | None:
    """Revoke the session behind `raw`; returns its account id if there was one."""
    if not raw:
        return None
    row = await session.scalar(
        update(BrowserSession)
        .where(BrowserSession.session_hash == hash_token(raw), BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(BrowserSession.account_id)
    )
    return row
