"""Staff users: creation, password sign-in, and their short-lived tokens.

Staff tokens are broker JWTs (`sessions.broker_jwt`: the broker's own signing keys, rotation
and JWKS for free, no token table to clean up) with their own audience (`vssid-admin`) and type
(`staff+jwt`), so an account's access token is never accepted by the admin API nor a staff
token by the account API. Passwords and their lockout are `vssid_broker.passwords`, the same
as the accounts' password sign-in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.config import Settings
from vssid_broker.errors.staff import (
    InvalidStaffCredentials,
    InvalidStaffToken,
    StaffRoleRequired,
    StaffSignInLocked,
    StaffUserExists,
    WeakStaffPassword,
)
from vssid_broker.passwords import (
    STAFF_MIN_PASSWORD_LENGTH,
    PasswordVerdict,
    UnknownIdentifierLockout,
    count_failure,
    hash_password,
    is_locked,
    needs_rehash,
)
from vssid_broker.sessions import broker_jwt
from vssid_broker.sessions.keys import SigningKeys


def staff_token_kind(settings: Settings) -> broker_jwt.TokenKind:
    return broker_jwt.TokenKind(
        typ="staff+jwt",
        audience=settings.staff_token_audience,
        ttl_seconds=settings.staff_token_ttl_seconds,
    )


async def create_staff_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: StaffRole,
    now: datetime,
    account_id: int | None = None,
) -> StaffUser:
    if len(password) < STAFF_MIN_PASSWORD_LENGTH:
        raise WeakStaffPassword("password too short")
    user = StaffUser(
        username=username,
        password_hash=await hash_password(password),
        role=role,
        account_id=account_id,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError as error:
        raise StaffUserExists(f"staff user {username!r} exists") from error
    return user


async def verify_password_of(
    sessions: async_sessionmaker[AsyncSession],
    username: str,
    password: str,
    *,
    now: datetime,
    unknown: UnknownIdentifierLockout,
) -> PasswordVerdict:
    """Step one of staff sign-in, outside any transaction (`PasswordVerdict` says why). A
    locked user's password is not looked at; a username that names no one locks the same way,
    so the lockout tells nothing."""
    async with sessions() as session:
        user = await _user(session, username)
    if user is None:
        locked = await unknown.unknown_identifier_locked("staff", username)
    else:
        locked = is_locked(user.locked_until, now)
    return await PasswordVerdict.of(
        username, password, user.password_hash if user else None, locked=locked
    )


async def _user(session: AsyncSession, username: str) -> StaffUser | None:
    return await session.scalar(select(StaffUser).where(StaffUser.username == username))


async def authenticate(
    session: AsyncSession,
    verdict: PasswordVerdict,
    *,
    now: datetime,
    unknown: UnknownIdentifierLockout,
) -> StaffUser:
    """Step two: the staff user the verdict signs in, or the refusal."""
    username = verdict.identifier
    user = await _user(session, username)
    if user is not None and is_locked(user.locked_until, now):
        raise StaffSignInLocked("staff user locked")
    if user is None:
        if await unknown.unknown_identifier_locked("staff", username):
            raise StaffSignInLocked("staff user locked")
        await unknown.count_unknown_identifier_failure("staff", username)
        raise InvalidStaffCredentials("wrong username or password")
    if not verdict.still_matches(user.password_hash) or user.disabled_at is not None:
        raise InvalidStaffCredentials("wrong username or password, or a disabled staff user")
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(verdict.password)
    user.failed_attempts, user.locked_until = 0, None
    return user


async def record_failed_sign_in(
    session: AsyncSession, username: str, *, now: datetime, settings: Settings
) -> None:
    """The same lockout as VssID accounts' password sign-in."""
    await session.execute(
        update(StaffUser)
        .where(StaffUser.username == username)
        .values(count_failure(StaffUser.failed_attempts, now=now, settings=settings))
    )


async def issue_staff_token(
    session: AsyncSession, keys: SigningKeys, settings: Settings, user: StaffUser, now: datetime
) -> str:
    return await broker_jwt.sign(
        session,
        keys,
        settings,
        staff_token_kind(settings),
        subject=str(user.id),
        now=now,
        claims={"role": user.role},
    )


async def verify_staff_token(
    session: AsyncSession, keys: SigningKeys, settings: Settings, raw: str, now: datetime
) -> StaffUser:
    """Every request re-reads the staff user: disabling one or changing a role takes effect
    before the token expires."""
    try:
        claims = await broker_jwt.verify(
            session, keys, settings, staff_token_kind(settings), raw, now
        )
    except broker_jwt.BrokerTokenRejected as error:
        raise InvalidStaffToken(f"staff token rejected: {error.reason}") from error
    subject = str(claims["sub"])
    user = await session.get(StaffUser, int(subject)) if subject.isdigit() else None
    if user is None or user.disabled_at is not None:
        raise InvalidStaffToken("staff user unknown or disabled")
    return user


def require_role(user: StaffUser, *roles: StaffRole) -> None:
    if user.role not in roles:
        raise StaffRoleRequired(f"role {user.role} may not do this; needs {'/'.join(roles)}")
