"""Password sign-in of VssID accounts: the social-insurance code (or, since 2025, the citizen ID)
and a password, hashed with argon2id, locked after repeated failures.

The failure counter is kept by the database (`failed_attempts = failed_attempts + 1` in one
UPDATE), so parallel guesses cannot slip past the limit. While locked, the password is not even
checked: a correct guess during the lockout would otherwise still tell the attacker it is right.
Passwords never reach a log, an audit event or a response.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from vssid_broker.accounts.models import Account, AccountPassword, AccountStatus
from vssid_broker.config import Settings
from vssid_broker.errors import DomainError, Unauthorized

PASSWORD_ACR = "vssid:password"
"""The `acr` of a session that began with a password, not with VNeID level 2."""
MIN_PASSWORD_LENGTH = 8

BHXH_CODE = re.compile(r"^\d{10}$")
CITIZEN_ID = re.compile(r"^\d{12}$")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class WrongPassword(Unauthorized):
    code = "invalid_credentials"
    message = "Mã số BHXH/số định danh cá nhân hoặc mật khẩu không đúng."


class PasswordSignInLocked(DomainError):
    status = 429
    code = "password_sign_in_locked"
    message = (
        "Bạn đã nhập sai mật khẩu quá nhiều lần. Đăng nhập bằng mật khẩu tạm khoá; vui lòng thử "
        "lại sau ít phút, hoặc đăng nhập bằng tài khoản định danh điện tử."
    )


class WeakPassword(DomainError):
    status = 422
    code = "weak_password"
    message = f"Mật khẩu phải có ít nhất {MIN_PASSWORD_LENGTH} ký tự."


@dataclass(frozen=True)
class SignedIn:
    account: Account


@dataclass(frozen=True)
class NotActive:
    """The right password of a locked or closed account."""

    account: Account


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
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword("password too short")
    row = await session.get(AccountPassword, account_id)
    if row is None:
        row = AccountPassword(account_id=account_id, failed_attempts=0)
        session.add(row)
    row.password_hash = _hasher.hash(password)
    row.failed_attempts, row.locked_until, row.changed_at = 0, None, now


def count_failure(
    failed_attempts: InstrumentedAttribute[int], *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """UPDATE values that count one wrong password in the database (concurrent guesses cannot
    under-count) and lock sign-in once the configured number of failures in a row is reached."""
    return {
        "failed_attempts": failed_attempts + 1,
        "locked_until": case(
            (
                failed_attempts + 1 >= settings.password_max_failures,
                now + timedelta(seconds=settings.password_lockout_seconds),
            ),
            else_=None,
        ),
    }


async def check(
    session: AsyncSession, identifier: str, password: str, *, now: datetime, settings: Settings
) -> PasswordCheck:
    """Check a password sign-in; writes the counter change into `session` (the caller commits
    it whatever the outcome: a failure must count even though the request is refused)."""
    if BHXH_CODE.match(identifier):
        where = Account.bhxh_code == identifier
    elif CITIZEN_ID.match(identifier):
        where = Account.citizen_id == identifier
    else:
        _verify(_DUMMY_HASH, password)
        return Failed(None, False)
    found = (
        await session.execute(select(Account, AccountPassword).join(AccountPassword).where(where))
    ).first()
    if found is None:
        _verify(_DUMMY_HASH, password)  # same time as a real check: no account enumeration
        return Failed(None, False)
    account, credential = found
    if credential.locked_until is not None and credential.locked_until > now:
        return Locked(account.id, credential.locked_until)
    if not _verify(credential.password_hash, password):
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
        .values(failed_attempts=0, locked_until=None)
    )
    if account.status != AccountStatus.ACTIVE:
        return NotActive(account)
    if _hasher.check_needs_rehash(credential.password_hash):
        await set_password(session, account.id, password, now=now)
    return SignedIn(account)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
