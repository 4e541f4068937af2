"""Staff users: creation, password sign-in, and their short-lived tokens.

Staff tokens are JWTs signed with the broker's own signing keys (rotation and JWKS for free, no
token table to clean up), with their own audience (`vssid-admin`) and type (`staff+jwt`) so an
account's access token is never accepted by the admin API nor a staff token by the account
API. Every request re-reads the staff user, so disabling one or changing a role takes effect
before the token expires.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.passwords import count_failure
from vssid_broker.admin.models import StaffRole, StaffUser
from vssid_broker.config import Settings
from vssid_broker.errors import Conflict, DomainError, Forbidden, Unauthorized
from vssid_broker.sessions.keys import SigningKeys

STAFF_TOKEN_TYPE = "staff+jwt"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the username is unknown, so a failed sign-in takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class InvalidStaffCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Tên đăng nhập hoặc mật khẩu không đúng."


class InvalidStaffToken(Unauthorized):
    code = "invalid_staff_token"
    message = "Phiên làm việc của cán bộ không hợp lệ hoặc đã hết hạn. Vui lòng đăng nhập lại."


class StaffRoleRequired(Forbidden):
    code = "staff_role_required"
    message = "Tài khoản cán bộ của bạn không có quyền thực hiện thao tác này."


class StaffUserExists(Conflict):
    code = "staff_user_exists"
    message = "Tên đăng nhập cán bộ đã tồn tại."


class WeakStaffPassword(DomainError):
    status = 422
    code = "weak_password"
    message = f"Mật khẩu cán bộ phải có ít nhất {MIN_PASSWORD_LENGTH} ký tự."


async def create_staff_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: StaffRole,
    now: datetime,
    account_id: int | None = None,
) -> StaffUser:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakStaffPassword("password too short")
    user = StaffUser(
        username=username,
        password_hash=_hasher.hash(password),
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


class StaffSignInLocked(DomainError):
    status = 429
    code = "staff_sign_in_locked"
    message = (
        "Tài khoản cán bộ tạm thời bị khoá do nhập sai mật khẩu nhiều lần. Vui lòng thử lại sau."
    )


async def authenticate(
    session: AsyncSession, username: str, password: str, *, now: datetime
) -> StaffUser:
    user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    # A locked user is refused before the password is looked at: guessing stops paying.
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise StaffSignInLocked(f"staff user locked until {user.locked_until.isoformat()}")
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError) as error:
        raise InvalidStaffCredentials("wrong username or password") from error
    if user is None or user.disabled_at is not None:
        raise InvalidStaffCredentials("unknown or disabled staff user")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
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
    key = await keys.active(session, now)
    issued = int(now.timestamp())
    claims = {
        "iss": settings.public_base_url,
        "sub": str(user.id),
        "aud": settings.staff_token_audience,
        "iat": issued,
        "exp": issued + settings.staff_token_ttl_seconds,
        "jti": secrets.token_urlsafe(16),
        "role": user.role,
    }
    header = {"alg": key.alg, "kid": key.kid, "typ": STAFF_TOKEN_TYPE}
    return jwt.encode(header, claims, key.private, algorithms=[key.alg])


async def verify_staff_token(
    session: AsyncSession, keys: SigningKeys, settings: Settings, raw: str, now: datetime
) -> StaffUser:
    verification_keys = await keys.verification_keys(session, now)
    try:
        token = jwt.decode(raw, verification_keys, algorithms=[settings.signing_alg])
        JWTClaimsRegistry(
            now=int(now.timestamp()),
            iss={"essential": True, "value": settings.public_base_url},
            aud={"essential": True, "value": settings.staff_token_audience},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(token.claims)
    except (JoseError, ValueError) as error:
        raise InvalidStaffToken(f"staff token rejected: {type(error).__name__}") from error
    # RFC 8725 §3.11: explicit typing keeps account access tokens out of the admin API.
    if token.header.get("typ") != STAFF_TOKEN_TYPE:
        raise InvalidStaffToken("not a staff token")
    subject = str(token.claims["sub"])
    user = await session.get(StaffUser, int(subject)) if subject.isdigit() else None
    if user is None or user.disabled_at is not None:
        raise InvalidStaffToken("staff user unknown or disabled")
    return user


def require_role(user: StaffUser, *roles: StaffRole) -> None:
    if user.role not in roles:
        raise StaffRoleRequired(f"role {user.role} may not do this; needs {'/'.join(roles)}")
