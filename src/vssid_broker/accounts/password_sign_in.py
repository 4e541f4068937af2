"""Password sign-in of VssID accounts: the social-insurance code (or, since 2025, the citizen ID)
and a password. Hashing, timing and the lockout counter are `vssid_broker.passwords`, shared
with staff sign-in; this module knows how an account is found and what its states mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.accounts.models import Account, AccountPassword, AccountStatus
from vssid_broker.config import Settings
from vssid_broker.errors.login import WeakPassword
from vssid_broker.identifiers import BHXH_CODE, CITIZEN_ID
from vssid_broker.passwords import (
    ACCOUNT_MIN_PASSWORD_LENGTH,
    RESET_FAILURES,
    PasswordVerdict,
    UnknownIdentifierLockout,
    count_failure,
    hash_password,
    is_locked,
    needs_rehash,
)
from vssid_broker.sealing import has_blind_index


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
    """Too many wrong passwords at this identifier: an account's, or one that names no one."""

    account_id: int | None


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
    row.password_hash = await hash_password(password)
    row.failed_attempts, row.locked_until, row.changed_at = 0, None, now


def _lookup(identifier: str) -> ColumnElement[bool] | None:
    if BHXH_CODE.match(identifier):
        return Account.bhxh_code == identifier
    if CITIZEN_ID.match(identifier):
        return has_blind_index(Account.citizen_id_index, identifier)
    return None


async def _credential(
    session: AsyncSession, identifier: str
) -> tuple[Account, AccountPassword] | None:
    where = _lookup(identifier)
    if where is None:
        return None
    found = (
        await session.execute(select(Account, AccountPassword).join(AccountPassword).where(where))
    ).first()
    return None if found is None else (found[0], found[1])


async def verify(
    sessions: async_sessionmaker[AsyncSession],
    identifier: str,
    password: str,
    *,
    now: datetime,
    unknown: UnknownIdentifierLockout,
) -> PasswordVerdict:
    """Step one of a password sign-in, outside any transaction. A locked sign-in is not
    checked at all; an identifier that names no one is checked against a dummy hash (the same
    time as a real check: no account enumeration)."""
    async with sessions() as session:
        found = await _credential(session, identifier)
    if found is None:
        locked = await unknown.unknown_identifier_locked("account", identifier)
        return await PasswordVerdict.of(identifier, password, None, locked=locked)
    credential = found[1]
    locked = is_locked(credential.locked_until, now)
    return await PasswordVerdict.of(identifier, password, credential.password_hash, locked=locked)


async def check(
    session: AsyncSession,
    verdict: PasswordVerdict,
    *,
    now: datetime,
    settings: Settings,
    unknown: UnknownIdentifierLockout,
) -> PasswordCheck:
    """Step two: what the verdict means now, with the counter change written into `session`
    (the caller commits it whatever the outcome: a failure must count even though the request
    is refused)."""
    found = await _credential(session, verdict.identifier)
    if found is None:
        # No account answers as one would: failures lock the identifier the same way.
        if await unknown.unknown_identifier_locked("account", verdict.identifier):
            return Locked(None)
        locked_now = await unknown.count_unknown_identifier_failure("account", verdict.identifier)
        return Failed(None, locked_now)
    account, credential = found
    if is_locked(credential.locked_until, now):
        return Locked(account.id)
    # A password changed since it was checked: the check was against the old one.
    if not verdict.still_matches(credential.password_hash):
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
        await set_password(session, account.id, verdict.password, now=now)
    return SignedIn(account)
