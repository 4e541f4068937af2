"""Passwords of people and of staff: argon2id hashes, constant-time answers, lockout counting.

One mechanism for both kinds of sign-in, so a fix to one is a fix to both:
- a hash is verified even when the user is unknown (against a dummy hash), so a failed
  sign-in takes as long whether or not the name exists (no enumeration by timing);
- the failure counter is kept by the database (`failed_attempts = failed_attempts + 1` in one
  UPDATE), so parallel guesses cannot slip past the limit;
- hashes made with older parameters are replaced at the next successful sign-in.
- hashing and verifying run in a small pool of threads, never on the event loop: argon2id
  costs about 115 ms of CPU, and on the loop one sign-in in flight held up every other request
  (health checks, refreshes). The pool's size (`VSSID_PASSWORD_HASH_THREADS`) bounds how much
  CPU password attempts can take; further attempts wait their turn (argon2-cffi releases the
  GIL while it hashes, so the threads run beside the loop).
Passwords never reach a log, an audit event or a response.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case
from sqlalchemy.orm import InstrumentedAttribute

from vssid_broker.config import Settings

PASSWORD_ACR = "vssid:password"
"""The `acr` of a session that began with a password, not with VNeID level 2."""
ACCOUNT_MIN_PASSWORD_LENGTH = 8
STAFF_MIN_PASSWORD_LENGTH = 12
"""Staff decide who may sign in to other people's accounts: longer passwords."""

HASH_PROFILES: dict[str, Parameters] = {
    "recommended": profiles.RFC_9106_LOW_MEMORY,  # argon2-cffi's own default
    "cheapest-for-tests": profiles.CHEAPEST,
}
"""`VSSID_PASSWORD_HASH_PROFILE`'s choices (config.py says why the second exists)."""

_profile = "recommended"
_hasher = PasswordHasher.from_parameters(HASH_PROFILES[_profile])
_dummy_hash: str | None = None
"""Checked when the identifier names no one. Made with the current parameters when a server
starts (`prepare_dummy_hash`), not at import: every command that imports this module would
pay an argon2id hash for it, and a dummy made before `use_profile` would be checked faster
than a real hash, which is what it must not be."""

_threads = 1
_workers = ThreadPoolExecutor(_threads, thread_name_prefix="argon2")


def use_profile(name: str) -> None:
    """Hash new passwords with the parameters of `HASH_PROFILES[name]` (once per process, at
    start-up); hashes made with others are replaced at their next successful sign-in."""
    global _profile, _hasher, _dummy_hash
    if name != _profile:
        _profile, _hasher = name, PasswordHasher.from_parameters(HASH_PROFILES[name])
        _dummy_hash = None


async def prepare_dummy_hash() -> None:
    """Make the unknown identifier's dummy hash now (a server's start-up), so the first sign-in
    at an unknown name takes no longer than any other."""
    await asyncio.get_running_loop().run_in_executor(_workers, _dummy)


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def set_hash_threads(count: int) -> None:
    """Size the pool that hashes and verifies passwords (once per process, at start-up)."""
    global _threads, _workers
    if count != _threads:
        previous = _workers
        _threads, _workers = count, ThreadPoolExecutor(count, thread_name_prefix="argon2")
        previous.shutdown(wait=False)


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_workers, _hasher.hash, password)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _check(password_hash: str | None, password: str) -> bool:
    return _matches(password_hash or _dummy(), password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; with no hash (unknown user) a dummy is checked, so the
    answer takes the same time either way."""
    matches = await asyncio.get_running_loop().run_in_executor(
        _workers, _check, password_hash, password
    )
    return matches and password_hash is not None


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


@dataclass(frozen=True)
class PasswordVerdict:
    """A password checked against the stored hash before any transaction begins: argon2id
    takes ~115 ms of CPU (more while attempts queue for the threads), and inside a transaction
    it would hold a pooled connection, and SQLite's write lock, all that time. The sign-in's
    transaction then acts on the verdict (counts a failure, resets the counter)."""

    identifier: str
    checked_hash: str | None
    """The hash the password was checked against; None when the identifier names no one or
    its sign-in is locked (then nothing was checked)."""
    matched: bool
    password: str = field(repr=False)
    """Kept for a rehash with current parameters after a successful sign-in."""

    @classmethod
    async def of(
        cls, identifier: str, password: str, password_hash: str | None, *, locked: bool
    ) -> PasswordVerdict:
        """Check `password` unless sign-in is locked (guessing stops paying, and the answer is
        the same whether or not the password was right); a missing hash is checked against a
        dummy, in the same time as a real one."""
        if locked:
            return cls(identifier, None, False, password)
        matched = await verify_password(password_hash, password)
        return cls(identifier, password_hash if matched else None, matched, password)

    def still_matches(self, password_hash: str) -> bool:
        """Right, and the password was not changed since it was checked."""
        return self.matched and password_hash == self.checked_hash


class UnknownIdentifierLockout(Protocol):
    """Failures at identifiers that name no one, counted outside the database (there is no
    row to count them in) with the same threshold and duration as an account's, so that a
    lockout answers the same whether the identifier exists or not
    (`vssid_broker.rate_limits.RateLimits`)."""

    async def unknown_identifier_locked(self, realm: str, identifier: str) -> bool: ...

    async def count_unknown_identifier_failure(self, realm: str, identifier: str) -> bool:
        """Count one; True when this failure reached the threshold."""
        ...


RESET_FAILURES: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
"""UPDATE values after a successful sign-in."""
