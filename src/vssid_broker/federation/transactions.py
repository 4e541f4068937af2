"""Login transactions: created at start, consumed exactly once at the callback.

Consumption is one conditional UPDATE, so two callbacks racing with the same `state` cannot
both win, whatever the number of broker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.errors.login import LoginStateInvalid
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.opaque_tokens import hash_token, new_token

LOGIN_TRANSACTIONS = cast(Table, LoginTransaction.__table__)


@dataclass(frozen=True)
class NewTransaction:
    state: str
    nonce: str
    code_verifier: str
    expires_at: datetime


async def create(
    session: AsyncSession,
    *,
    channel: str,
    redirect_uri: str,
    now: datetime,
    ttl_seconds: int,
    return_to: str | None = None,
    browser_binding: str | None = None,
    app_code_challenge: str | None = None,
    max_age: int | None = None,
    prompt: str | None = None,
) -> NewTransaction:
    state, nonce, verifier = new_token(), new_token(), new_token(48)
    expires_at = now + timedelta(seconds=ttl_seconds)
    # A Core INSERT, not the ORM's unit of work: nothing here reads the row back.
    await session.execute(
        insert(LOGIN_TRANSACTIONS).values(
            state_hash=hash_token(state),
            channel=channel,
            nonce=nonce,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
            return_to=return_to,
            browser_binding_hash=hash_token(browser_binding) if browser_binding else None,
            app_code_challenge=app_code_challenge,
            max_age=max_age,
            prompt=prompt,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return NewTransaction(state, nonce, verifier, expires_at)


async def consume(
    session: AsyncSession, *, state: str | None, channel: str, now: datetime
) -> LoginTransaction:
    """Mark the transaction used and return it; refuse a missing, unknown, reused or expired one.

    One conditional UPDATE, so it is safe on an autocommit session: two callbacks racing with
    the same state cannot both win, and a refused state is left as it was."""
    if not state:
        raise LoginStateInvalid("callback without state")
    state_hash = hash_token(state)
    claimed = await session.scalar(
        update(LoginTransaction)
        .where(
            LoginTransaction.state_hash == state_hash,
            LoginTransaction.consumed_at.is_(None),
            LoginTransaction.channel == channel,
            LoginTransaction.expires_at > now,
        )
        .values(consumed_at=now)
        .returning(LoginTransaction)
        .execution_options(synchronize_session=False)
    )
    if claimed is None:
        known = (
            await session.execute(
                select(LoginTransaction.consumed_at, LoginTransaction.expires_at).where(
                    LoginTransaction.state_hash == state_hash
                )
            )
        ).first()
        if known is None:
            raise LoginStateInvalid("state unknown")
        if known.consumed_at is not None:
            raise LoginStateInvalid("state already used")
        if known.expires_at <= now:
            raise LoginStateInvalid("state expired")
        raise LoginStateInvalid("state unknown")  # started on the other channel
    return claimed


async def purge_expired(session: AsyncSession, *, now: datetime) -> int:
    result = await session.execute(
        delete(LoginTransaction).where(LoginTransaction.expires_at < now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
