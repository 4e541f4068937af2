"""Staff users: creation, password sign-in, and their short-lived tokens.

Staff tokens are broker JWTs (`sessions.broker_jwt`: the broker's own signing keys, rotation
and JWKS for free, no token table to clean up) with their own audience (`vssid-admin`) and type
(`staff+jwt`), so an account's access token is never accepted by the admin API nor a staff
token by the account API. Passwords and their lockout are `vssid_broker.passwords`, the same
as the accounts' password sign-in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.accounts import service as accounts
from vssid_broker.admin import console_sessions, second_factor
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.config import Settings
from vssid_broker.errors import DomainError
from vssid_broker.errors.staff import (
    InvalidSecondFactor,
    InvalidStaffCredentials,
    InvalidStaffToken,
    SecondFactorNotEnrolled,
    StaffChangeIncomplete,
    StaffOwnAccountUnknown,
    StaffRoleRequired,
    StaffSelfChange,
    StaffSignInLocked,
    StaffUserExists,
    StaffUserNotFound,
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

READS_CASES = (StaffRole.REVIEWER, StaffRole.APPROVER, StaffRole.ADMIN)
DECIDES = (StaffRole.REVIEWER, StaffRole.ADMIN)
"""Approve (propose, under four eyes), reject, close, claim."""
CONFIRMS = (StaffRole.APPROVER, StaffRole.ADMIN)
"""Confirm or return a reviewer's approval."""
HELPS_PEOPLE = (StaffRole.REVIEWER, StaffRole.APPROVER, StaffRole.ADMIN)
"""Search a person, end their sessions, lock and unlock their account."""
READS_AUDIT = (StaffRole.AUDITOR, StaffRole.ADMIN)
MANAGES_STAFF = (StaffRole.ADMIN,)
UNLINKS = (StaffRole.ADMIN,)


def can(user: StaffUser, roles: tuple[StaffRole, ...]) -> bool:
    return user.role in roles


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
    citizen_id: str | None = None,
) -> StaffUser:
    """`citizen_id` binds the staff member to their own VssID account (found through the
    accounts service): they will not decide or confirm cases about it."""
    if len(password) < STAFF_MIN_PASSWORD_LENGTH:
        raise WeakStaffPassword("password too short")
    if citizen_id is not None:
        own = await accounts.find_by_citizen_id(session, citizen_id)
        if own is None:
            raise StaffOwnAccountUnknown("no account carries that citizen ID")
        account_id = own.id
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
    # The failure count is cleared by the second factor (`check_second_factor`), not here: a
    # right password alone must not reset the count of wrong codes.
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


async def record_refused_sign_in(
    session: AsyncSession,
    username: str,
    refusal: DomainError,
    *,
    now: datetime,
    settings: Settings,
    request_id: str | None,
) -> None:
    """A refused staff sign-in, in its own transaction: a wrong password or a wrong second
    factor counts towards the lockout; every refusal is in the trail (never what was typed)."""
    if isinstance(refusal, InvalidStaffCredentials | InvalidSecondFactor):
        await record_failed_sign_in(session, username, now=now, settings=settings)
    audit.record(
        session,
        event_type=refusal.audit_event or AuditEventType.STAFF_SIGN_IN,
        outcome=refusal.code,
        now=now,
        actor=f"staff:{username[:64]}",
        request_id=request_id,
    )


SIGN_IN_REFUSALS = (
    InvalidStaffCredentials,
    StaffSignInLocked,
    InvalidSecondFactor,
    SecondFactorNotEnrolled,
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


async def check_second_factor(
    session: AsyncSession, user: StaffUser, code: str | None, keys: SigningKeys, now: datetime
) -> str:
    """A TOTP code, or else a recovery code; returns which (`totp` or `recovery_code`)."""
    if is_locked(user.locked_until, now):
        raise StaffSignInLocked("staff user locked")
    if user.totp_enrolled_at is None:
        raise SecondFactorNotEnrolled(f"staff user {user.username} has no second factor")
    if code and await second_factor.accept_code(session, user, code, keys, now):
        factor = "totp"
    elif code and await second_factor.spend_recovery_code(session, user, code, now):
        factor = "recovery_code"
    else:
        raise InvalidSecondFactor("wrong or reused code")
    user.failed_attempts, user.locked_until = 0, None
    return factor


def require_role(user: StaffUser, *roles: StaffRole) -> None:
    if user.role not in roles:
        raise StaffRoleRequired(f"role {user.role} may not do this; needs {'/'.join(roles)}")


# --- staff management (admins, in the console, the API and the CLI) --------------------------
async def list_staff(session: AsyncSession) -> list[StaffUser]:
    return list(await session.scalars(select(StaffUser).order_by(StaffUser.username)))


async def get_staff(session: AsyncSession, staff_id: int) -> StaffUser:
    user = await session.get(StaffUser, staff_id)
    if user is None:
        raise StaffUserNotFound(f"no staff user {staff_id}")
    return user


async def find_staff(session: AsyncSession, username: str) -> StaffUser:
    user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        raise StaffUserNotFound(f"no staff user {username!r}")
    return user


StaffChange = Literal["disable", "enable", "reset_password", "reset_second_factor", "role"]


async def change_staff(
    session: AsyncSession,
    target: StaffUser,
    change: StaffChange,
    *,
    actor: str,
    now: datetime,
    request_id: str | None,
    password: str | None = None,
    role: StaffRole | None = None,
) -> None:
    """One audited change to a staff user. A disabled user, a new password or a reset second
    factor ends their open console sessions (their API tokens are refused at once too, by the
    per-request re-read, for disabling; and expire within minutes otherwise)."""
    if actor == f"staff:{target.username}" and change in ("disable", "role"):
        raise StaffSelfChange("an admin does not lock themselves out")
    details: dict[str, Any] = {}
    match change:
        case "disable":
            target.disabled_at = now
        case "enable":
            target.disabled_at = None
            target.failed_attempts, target.locked_until = 0, None
        case "reset_password":
            if password is None or len(password) < STAFF_MIN_PASSWORD_LENGTH:
                raise WeakStaffPassword("password too short")
            target.password_hash = await hash_password(password)
            target.failed_attempts, target.locked_until = 0, None
        case "reset_second_factor":
            await second_factor.reset(session, target)
        case "role":
            if role is None:
                raise StaffChangeIncomplete("a role change names the new role")
            details = {"from_role": target.role, "to_role": role}
            target.role = role
    if change == "reset_password" and password is None:
        raise StaffChangeIncomplete("a password reset carries the new password")
    if change != "enable":
        await console_sessions.end_all_for(session, target.id, now)
    audit.record(
        session,
        event_type=AuditEventType.STAFF_CHANGED,
        outcome=change,
        now=now,
        actor=actor,
        request_id=request_id,
        staff_user=target.username,
        **details,
    )


def record_created(
    session: AsyncSession, user: StaffUser, *, actor: str, now: datetime, request_id: str | None
) -> None:
    audit.record(
        session,
        event_type=AuditEventType.STAFF_CHANGED,
        outcome="created",
        now=now,
        actor=actor,
        request_id=request_id,
        staff_user=user.username,
        role=user.role,
        bound_to_own_account=user.account_id is not None,
    )
