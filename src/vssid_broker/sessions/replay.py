"""Single-use `jti`s (logout tokens, DPoP proofs), settled by the database's primary key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.sessions.models import UsedJti


class JtiReplayed(Exception):
    """This `jti` was accepted before."""


async def remember_jti(
    session: AsyncSession, *, purpose: str, jti: str, expires_at: datetime
) -> None:
    """Record a `jti` as used; the primary key makes a second use fail in every process.

    Runs in a savepoint so a replay leaves the caller's transaction usable.
    """
    try:
        async with session.begin_nested():
            session.add(UsedJti(purpose=purpose, jti=jti, expires_at=expires_at))
    except IntegrityError as error:
        raise JtiReplayed(f"{purpose} jti already used") from error
