"""Password sign-in of VssID accounts: the social-insurance code (or, since 2025, the citizen ID)
and a password. Hashing, timing and the lockout counter are `vssid_broker.passwords`, shared
with staff sign-in; this module knows how an account is found and what its states mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account, AccountPassword, AccountStatus
from vssid_broker.config import Settings
from vssid_broker.errors.login import WeakPassword
from vssid_broker.identifiers import BHXH_CODE, CITIZEN_ID
from vssid_broker.passwords import (
    ACCOUNT_MIN_PASSWORD_LENGTH,
    RESET_FAILURES,
    count_failure,
    hash_password,
    is_locked,
    needs_rehash,
    verify_password,
)
from vssid_broker.sealing import blind_index


@dataclass(frozen=True)
class SignedIn:
    account: Account


@dataclass(frozen=True)
class NotActive:
    """The right password of a locked or closed account."""

    account: Account

    @property
    def account_id(self) -> int:
        return self.account.id


@dataclass(frozen=True)
class Failed:
    """Unknown identifier, no password, or a wrong password: one answer to the caller."""

    account_id: int | None
    locked_now: bool


@dataclass(frozen=True)
class Locked:
    account_id: int
    until: datetime


PasswordCheck = SignedIn | NotActive | Failed | Locked


async def set_password(
    session: AsyncSession, account_id: int, password: str, *, now: datetime
) -> None:
    if len(password) < ACCOUNT_MIN_PASSWORD_LENGTH:
        raise WeakPassword("password too short")
    row = await session.get(AccountPassword, account_id)
    if row is None:
        row = AccountPassword(account_id=account_id, failed_attempts=0)
        session.add(row)
    row.password_hash = hash_password(password)
    row.failed_attempts, row.locked_until, row.changed_at = 0, None, now


async def check(
    session: AsyncSession, identifier: str, password: str, *, now: datetime, settings: Settings
) -> PasswordCheck:
    """Check a password sign-in; writes the counter change into `session` (the caller commits
    it whatever the outcome: a failure must count even though the request is refused)."""
    if BHXH_CODE.match(identifier):
        where = Account.bhxh_code == identifier
    elif CITIZEN_ID.match(identifier):
        where = Account.citizen_id_index == blind_index(identifier)
    else:
        verify_password(None, password)  # same time as a real check: no account enumeration
        return Failed(None, False)
    found = (
        await session.execute(select(Account, AccountPassword).join(AccountPassword).where(where))
    ).first()
    if found is None:
        verify_password(None, password)
        return Failed(None, False)
    account, credential = found
    if credential.locked_until is not None and is_locked(credential.locked_until, now):
        return Locked(account.id, credential.locked_until)
    if not verify_password(credential.password_hash, password):
        failures = await session.scalar(
            update(AccountPassword)
            .where(AccountPassword.account_id == account.id)
            .values(count_failure(AccountPassword.failed_attempts, now=now, settings=settings))
            .returning(AccountPassword.failed_attempts)
            .execution_options(synchronize_session=False)
        )
        return Failed(account.id, (failures or 0) >= settings.password_max_failures)
    await session.execute(
        update(AccountPassword)
        .where(AccountPassword.account_id == account.id)
        .values(RESET_FAILURES)
    )
    if account.status != AccountStatus.ACTIVE:
        return NotActive(account)
    if needs_rehash(credential.password_hash):
        await set_password(session, account.id, password, now=now)
    return SignedIn(account)
