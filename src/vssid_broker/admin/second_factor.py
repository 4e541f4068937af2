"""The staff second factor: TOTP (RFC 6238, `pyotp`) enrolled by QR code, and recovery codes.

A secret is created at the first console sign-in and sealed under the key-encryption key like
every other secret the broker keeps; it counts only once a code from the authenticator has
been accepted (`totp_enrolled_at`). Each accepted time step is remembered, so a code seen over
a shoulder or in a proxy log cannot be replayed within its window (RFC 6238 §5.2). Recovery
codes are random, shown once, stored as hashes and spent on use.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.admin.models import STAFF_TOTP_SECRET, StaffRecoveryCode, StaffUser
from vssid_broker.opaque_tokens import hash_token
from vssid_broker.sealing import Binding
from vssid_broker.sessions.keys import SigningKeys

ISSUER_NAME = "VssID cán bộ"
RECOVERY_CODES = 10
VALID_WINDOW = 1
"""Steps either side of now that are accepted: 30 s of clock drift on the phone."""


def _bound_to(user: StaffUser) -> Binding:
    """The secret is sealed for this staff user's row alone (`STAFF_TOTP_SECRET`)."""
    return STAFF_TOTP_SECRET.of(user.id)


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER_NAME)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as inline SVG: no image request, no script."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, title="Mã QR đăng ký"))


def offer_secret(user: StaffUser, keys: SigningKeys) -> str:
    """The secret to enrol: the one already offered (so a reload shows the same QR code), or
    a new one. Never replaces an enrolled secret."""
    if user.totp_secret_sealed is not None and user.totp_enrolled_at is None:
        return keys.unseal(user.totp_secret_sealed, _bound_to(user))
    if user.totp_enrolled_at is not None:
        raise ValueError("second factor already enrolled")
    secret = new_secret()
    user.totp_secret_sealed = keys.seal(secret, _bound_to(user))
    return secret


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


async def accept_code(
    session: AsyncSession, user: StaffUser, code: str, keys: SigningKeys, now: datetime
) -> bool:
    """True if `code` is the authenticator's for now and not used before; the step is spent
    by a conditional UPDATE, so two requests with one code cannot both pass."""
    if user.totp_secret_sealed is None:
        return False
    step = _matching_step(keys.unseal(user.totp_secret_sealed, _bound_to(user)), code, now)
    if step is None:
        return False
    spent = await session.scalar(
        update(StaffUser)
        .where(
            StaffUser.id == user.id,
            (StaffUser.totp_last_step.is_(None)) | (StaffUser.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .returning(StaffUser.id)
        .execution_options(synchronize_session=False)
    )
    if spent is None:
        return False
    user.totp_last_step = step
    return True


async def confirm_enrolment(
    session: AsyncSession, user: StaffUser, code: str, keys: SigningKeys, now: datetime
) -> list[str] | None:
    """Enrolment's proof: a right code marks the secret enrolled and returns fresh recovery
    codes (shown once); a wrong one returns None and changes nothing."""
    if user.totp_enrolled_at is not None or not await accept_code(session, user, code, keys, now):
        return None
    user.totp_enrolled_at = now
    user.failed_attempts, user.locked_until = 0, None
    return await new_recovery_codes(session, user)


async def new_recovery_codes(session: AsyncSession, user: StaffUser) -> list[str]:
    await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == user.id))
    codes = [_format_code(secrets.token_hex(10)) for _ in range(RECOVERY_CODES)]
    session.add_all(
        StaffRecoveryCode(staff_id=user.id, code_hash=hash_token(_canonical(code)))
        for code in codes
    )
    return codes


def _format_code(hex_digits: str) -> str:
    return "-".join(hex_digits[i : i + 5] for i in range(0, len(hex_digits), 5))


def _canonical(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


async def spend_recovery_code(
    session: AsyncSession, user: StaffUser, code: str, now: datetime
) -> bool:
    spent = await session.scalar(
        update(StaffRecoveryCode)
        .where(
            StaffRecoveryCode.staff_id == user.id,
            StaffRecoveryCode.code_hash == hash_token(_canonical(code)),
            StaffRecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .returning(StaffRecoveryCode.id)
        .execution_options(synchronize_session=False)
    )
    return spent is not None


async def recovery_codes_left(session: AsyncSession, user: StaffUser) -> int:
    return len(
        list(
            await session.scalars(
                select(StaffRecoveryCode.id).where(
                    StaffRecoveryCode.staff_id == user.id, StaffRecoveryCode.used_at.is_(None)
                )
            )
        )
    )


async def reset(session: AsyncSession, user: StaffUser) -> None:
    """Forget the second factor: the next sign-in enrols a new authenticator."""
    user.totp_secret_sealed = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    await session.execute(delete(StaffRecoveryCode).where(StaffRecoveryCode.staff_id == user.id))


async def enrol_with_secret(
    session: AsyncSession, user: StaffUser, secret: str, keys: SigningKeys, now: datetime
) -> None:
    """Enrol a known secret without a code: the demo's printed secret and tests only."""
    await session.flush()  # the user's id, which the secret is sealed for
    user.totp_secret_sealed = keys.seal(secret, _bound_to(user))
    user.totp_enrolled_at = now
    await session.flush()
