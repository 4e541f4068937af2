"""`vssid-broker purge`: delete every row past the end of its use, across the domains.

Each domain says what has expired (its own `purge_expired`); this is the one list of them, so a
new kind of short-lived row is purged by adding it here, not by remembering a second command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.admin import console_sessions
from vssid_broker.config import Settings
from vssid_broker.federation import transactions
from vssid_broker.sessions import service as sessions


@dataclass(frozen=True)
class Purged:
    login_transactions: int
    sessions: sessions.Purged
    staff_console_sessions: int


async def purge(session: AsyncSession, now: datetime, settings: Settings) -> Purged:
    return Purged(
        login_transactions=await transactions.purge_expired(session, now=now),
        sessions=await sessions.purge_expired(session, now, settings),
        staff_console_sessions=await console_sessions.purge_expired(session, now, settings),
    )
