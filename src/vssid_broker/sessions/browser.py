"""Browser sessions: a random cookie value, stored server-side only as its hash.

A session ends at the first of: its absolute lifetime (`expires_at`), an idle gap longer than
the configured idle timeout (counted from `last_used_at`), logout, or revocation. Every check
is one conditional UPDATE, so two processes never disagree about a session's state.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.opaque_tokens import hash_token, new_token
from vssid_broker.sealing import Binding
from vssid_broker.sessions.keys import SigningKeys
from vssid_broker.sessions.models import SESSION_VNEID_ID_TOKEN, BrowserSession

SESSION_COOKIE = "vssid_session"
BROWSER_SESSIONS = cast(Table, BrowserSession.__table__)
USER_AGENT_MAX = 200


async def start(
    session: AsyncSession,
    *,
    account_id: int,
    acr: str,
    now: datetime,
    ttl_seconds: int,
    auth_time: datetime | None = None,
    user_agent: str | None = None,
    vneid_id_token: str | None = None,
    keys: SigningKeys | None = None,
    vneid_sid: str | None = None,
) -> str:
    """A new session; VNeID's ID token, if any, is kept sealed by `keys` for this session
    alone (`SESSION_VNEID_ID_TOKEN`)."""
    raw = new_token()
    session_hash = hash_token(raw)
    sealed_id_token = None
    if vneid_id_token:
        if keys is None:
            raise TypeError("an ID token is kept only sealed: give the keys")
        sealed_id_token = keys.seal(vneid_id_token, SESSION_VNEID_ID_TOKEN.of(session_hash))
    # A Core INSERT, not the ORM's unit of work: nothing here reads the row back.
    await session.execute(
        insert(BROWSER_SESSIONS).values(
            session_hash=session_hash,
            public_id=str(uuid.uuid4()),
            account_id=account_id,
            acr=acr,
            auth_time=auth_time,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            csrf_token=new_token(),
            user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
            vneid_id_token_sealed=sealed_id_token,
            vneid_sid=vneid_sid,
        )
    )
    return raw


def _live(now: datetime, idle_seconds: int) -> list[ColumnElement[bool]]:
    return [
        BrowserSession.revoked_at.is_(None),
        BrowserSession.expires_at > now,
        BrowserSession.last_used_at > now - timedelta(seconds=idle_seconds),
        # A locked or closed account has no live session, whoever locked it and however.
        BrowserSession.account_id.in_(select(Account.id).where(Account.status == "active")),
    ]


async def find(
    session: AsyncSession, raw: str | None, now: datetime, *, idle_seconds: int
) -> BrowserSession | None:
    """The live session behind the cookie, its idle clock restarted; None when it has ended."""
    if not raw:
        return None
    return await session.scalar(
        update(BrowserSession)
        .where(BrowserSession.session_hash == hash_token(raw), *_live(now, idle_seconds))
        .values(last_used_at=now)
        .returning(BrowserSession)
        .execution_options(synchronize_session=False)
    )


def csrf_token_matches(current: BrowserSession, submitted: str | None) -> bool:
    """OWASP CSRF cheat sheet, synchronizer token pattern: the form must carry this session's
    own token; compared in constant time."""
    return bool(submitted) and hmac.compare_digest(current.csrf_token, submitted or "")


REVOKED = {"vneid_id_token_sealed": None}
"""What every revocation clears besides setting `revoked_at`: VNeID's ID token (citizen ID,
name, birth date, sealed) is kept only to hint VNeID's logout, so it goes the moment the
session ends, not at the purge hours later."""


@dataclass(frozen=True)
class EndedBrowserSession:
    account_id: int
    vneid_id_token_sealed: str | None = field(repr=False)
    """The token as it was before revocation cleared it: for the logout leg to VNeID."""
    session_hash: str = field(repr=False)

    @property
    def vneid_id_token_binding(self) -> Binding:
        """What the sealed ID token opens with: it was sealed for this session's row."""
        return SESSION_VNEID_ID_TOKEN.of(self.session_hash)


async def end(session: AsyncSession, raw: str | None, now: datetime) -> EndedBrowserSession | None:
    """Revoke the session behind `raw`; returns whose it was (and the ID token it held) if it
    was still open."""
    if not raw:
        return None
    open_session = await session.scalar(
        select(BrowserSession)
        .where(BrowserSession.session_hash == hash_token(raw), BrowserSession.revoked_at.is_(None))
        .with_for_update()
    )
    if open_session is None:
        return None
    ended = EndedBrowserSession(
        open_session.account_id, open_session.vneid_id_token_sealed, open_session.session_hash
    )
    await session.execute(
        update(BrowserSession)
        .where(BrowserSession.session_hash == open_session.session_hash)
        .values(revoked_at=now, **REVOKED)
        .execution_options(synchronize_session=False)
    )
    session.expunge(open_session)
    return ended


async def end_one(session: AsyncSession, account_id: int, public_id: str, now: datetime) -> bool:
    ended = await session.scalar(
        update(BrowserSession)
        .where(
            BrowserSession.account_id == account_id,
            BrowserSession.public_id == public_id,
            BrowserSession.revoked_at.is_(None),
        )
        .values(revoked_at=now, **REVOKED)
        .returning(BrowserSession.public_id)
    )
    return ended is not None


async def end_all(session: AsyncSession, account_id: int, now: datetime) -> int:
    return await end_all_of(session, [account_id], now)


async def end_all_of(session: AsyncSession, account_ids: Sequence[int], now: datetime) -> int:
    """End every open browser session of these accounts with one statement; how many ended."""
    result = await session.execute(
        update(BrowserSession)
        .where(BrowserSession.account_id.in_(account_ids), BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now, **REVOKED)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def end_for_vneid_session(session: AsyncSession, sid: str, now: datetime) -> list[int]:
    """End every open session VNeID's session `sid` started; the accounts they belonged to."""
    ended = await session.scalars(
        update(BrowserSession)
        .where(BrowserSession.vneid_sid == sid, BrowserSession.revoked_at.is_(None))
        .values(revoked_at=now, **REVOKED)
        .returning(BrowserSession.account_id)
    )
    return list(ended)


async def active(
    session: AsyncSession, account_id: int, now: datetime, *, idle_seconds: int
) -> list[BrowserSession]:
    return list(
        await session.scalars(
            select(BrowserSession)
            .where(BrowserSession.account_id == account_id, *_live(now, idle_seconds))
            .order_by(BrowserSession.created_at.desc())
        )
    )
