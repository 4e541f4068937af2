"""Staff console sessions: a random cookie value stored as its hash, like a person's browser
session (`sessions.browser`), but its own table, cookie and path, and two steps: the password
opens it, the second factor completes it.

Every check is one conditional UPDATE (idle and absolute timeouts, revocation, a disabled
staff user), so every broker process agrees on a session's state.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.admin.models import StaffConsoleSession, StaffUser
from vssid_broker.config import Settings
from vssid_broker.opaque_tokens import hash_token, new_token

COOKIE = "vssid_staff"
COOKIE_PATH = "/admin"


def start(session: AsyncSession, user: StaffUser, *, now: datetime, settings: Settings) -> str:
    raw = new_token()
    session.add(
        StaffConsoleSession(
            session_hash=hash_token(raw),
            staff_id=user.id,
            csrf_token=new_token(),
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=settings.staff_console_ttl_seconds),
        )
    )
    return raw


def _live(now: datetime, settings: Settings) -> list[ColumnElement[bool]]:
    return [
        StaffConsoleSession.revoked_at.is_(None),
        StaffConsoleSession.expires_at > now,
        StaffConsoleSession.last_used_at
        > now - timedelta(seconds=settings.staff_console_idle_seconds),
        StaffConsoleSession.staff_id.in_(
            select(StaffUser.id).where(StaffUser.disabled_at.is_(None))
        ),
    ]


async def find(
    session: AsyncSession, raw: str | None, now: datetime, settings: Settings
) -> tuple[StaffConsoleSession, StaffUser] | None:
    """The live session behind the cookie and its staff user, its idle clock restarted."""
    if not raw:
        return None
    found = await session.scalar(
        update(StaffConsoleSession)
        .where(StaffConsoleSession.session_hash == hash_token(raw), *_live(now, settings))
        .values(last_used_at=now)
        .returning(StaffConsoleSession)
        .execution_options(synchronize_session=False)
    )
    if found is None:
        return None
    user = await session.get_one(StaffUser, found.staff_id)
    return found, user


async def complete(session: AsyncSession, console: StaffConsoleSession, now: datetime) -> str:
    """The second factor passed: the session is signed in, under a new cookie value (a value
    seen before the second factor never signs anyone in: session fixation)."""
    raw = new_token()
    await session.execute(
        update(StaffConsoleSession)
        .where(StaffConsoleSession.id == console.id)
        .values(session_hash=hash_token(raw), second_factor_at=now, csrf_token=new_token())
        .execution_options(synchronize_session=False)
    )
    return raw


async def end(session: AsyncSession, console_id: int, now: datetime) -> None:
    await session.execute(
        update(StaffConsoleSession)
        .where(StaffConsoleSession.id == console_id, StaffConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def end_all_for(session: AsyncSession, staff_id: int, now: datetime) -> None:
    """A disabled user, a reset password or second factor: their open consoles end now."""
    await session.execute(
        update(StaffConsoleSession)
        .where(StaffConsoleSession.staff_id == staff_id, StaffConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def csrf_token_matches(console: StaffConsoleSession, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(console.csrf_token, submitted or "")


async def purge_expired(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """Console sessions past their lifetime or idle limit, or ended: nothing left to check."""
    result = await session.execute(
        delete(StaffConsoleSession).where(
            StaffConsoleSession.revoked_at.is_not(None)
            | (StaffConsoleSession.expires_at <= now)
            | (
                StaffConsoleSession.last_used_at
                <= now - timedelta(seconds=settings.staff_console_idle_seconds)
            )
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
