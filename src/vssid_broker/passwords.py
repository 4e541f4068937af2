"""Passwords of people and of staff: argon2id hashes, constant-time answers, lockout counting.

One mechanism for both kinds of sign-in, so a fix to one is a fix to both:
- a hash is verified even when the user is unknown (against a dummy hash), so a failed
  sign-in takes as long whether or not the name exists (no enumeration by timing);
- the failure counter is kept by the database (`failed_attempts = failed_attempts + 1` in one
  UPDATE), so parallel guesses cannot slip past the limit;
- hashes made with older parameters are replaced at the next successful sign-in.
Passwords never reach a log, an audit event or a response.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case
from sqlalchemy.orm import InstrumentedAttribute

from vssid_broker.config import Settings

PASSWORD_ACR = "vssid:password"
"""The `acr` of a session that began with a password, not with VNeID level 2."""
ACCOUNT_MIN_PASSWORD_LENGTH = 8
STAFF_MIN_PASSWORD_LENGTH = 12
"""Staff decide who may sign in to other people's accounts: longer passwords."""

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no hash (unknown user) a dummy is checked, so the
    answer takes the same time either way."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    """While locked, the password is not even checked: a right guess during the lockout would
    otherwise still tell the attacker it is right."""
    return locked_until is not None and locked_until > now


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


RESET_FAILURES: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
"""UPDATE values after a successful sign-in."""
