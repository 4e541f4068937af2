"""Login transactions: created at start, consumed exactly once at the callback.

Consumption is one conditional UPDATE, so two callbacks racing with the same `state` cannot
both win, whatever the number of broker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.db import CompiledOnce, UTCDateTime
from vssid_broker.errors.login import LoginStateInvalid
from vssid_broker.federation.models import LoginTransaction
from vssid_broker.opaque_tokens import hash_token, new_token

LOGIN_TRANSACTIONS = cast(Table, LoginTransaction.__table__)

# The two statements of every login, compiled once (`CompiledOnce`): Core, not the ORM's unit
# of work or its bulk UPDATE, as nothing here needs the session to track the row.
_CREATE = CompiledOnce(insert(LOGIN_TRANSACTIONS))  # every column a parameter of its name
_CONSUME = CompiledOnce(
    update(LOGIN_TRANSACTIONS)
    .where(
        LOGIN_TRANSACTIONS.c.state_hash == bindparam("given_state_hash"),
        LOGIN_TRANSACTIONS.c.consumed_at.is_(None),
        LOGIN_TRANSACTIONS.c.channel == bindparam("given_channel"),
        LOGIN_TRANSACTIONS.c.expires_at > bindparam("now", type_=UTCDateTime()),
    )
    .values(consumed_at=bindparam("now", type_=UTCDateTime()))
    .returning(*LOGIN_TRANSACTIONS.columns)
)


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
    await _CREATE.first(
        session,
        dict(
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
            consumed_at=None,
        ),
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
    claimed = await _CONSUME.first(
        session, {"given_state_hash": state_hash, "given_channel": channel, "now": now}
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
    return LoginTransaction(**claimed)  # a plain copy of the row: nothing writes it again


async def purge_expired(session: AsyncSession, *, now: datetime) -> int:
    result = await session.execute(
        delete(LoginTransaction).where(LoginTransaction.expires_at < now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
