"""Tables of the admin domain: staff users who review links, their second factor and their
console sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.accounts import models as _accounts  # noqa: F401 - staff_users.account_id's target
from vssid_broker.db import Base, BigId, UTCDateTime
from vssid_broker.sealing import SealedPlace

STAFF_TOTP_SECRET = SealedPlace("staff_users", "totp_secret_sealed", owner=("id",))
"""A second factor's secret is bound to its staff user's id: the user exists (has an id) before
any secret is offered, and the id never changes (a username could be re-used)."""


class StaffRole(StrEnum):
    REVIEWER = "reviewer"
    """Reads review cases and decides them; searches people, ends their sessions, locks."""
    APPROVER = "approver"
    """Reads review cases and confirms (or returns) a reviewer's approval: the second pair of
    eyes before a link is made."""
    AUDITOR = "auditor"
    """Reads the audit trail and exports it; decides nothing, changes nothing."""
    ADMIN = "admin"
    """Manages staff users and unlinks identities."""


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint("role IN ('reviewer', 'approver', 'auditor', 'admin')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id, as encoded by argon2-cffi (parameters and salt included)."""
    role: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    """The staff member's own VssID account, found by their citizen ID when they are created:
    they may not decide or confirm cases about it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """Wrong passwords or codes since the last success, counted by the database."""
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text)
    """RFC 6238 secret, sealed under the key-encryption key (`SigningKeys.seal`)."""
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set once the staff member proved the authenticator works; until then the secret is
    only offered for enrolment and never accepted as a second factor."""
    totp_last_step: Mapped[int | None] = mapped_column(BigId)
    """The last accepted time step: a code is accepted once (RFC 6238 §5.2)."""


class StaffRecoveryCode(Base):
    """A one-time code for when the authenticator is lost; stored as SHA-256 only (80 random
    bits each, so a plain hash is enough, as for opaque tokens)."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffConsoleSession(Base):
    """A staff member's browser session at /admin, apart from the people's sessions.

    It starts when the password is right and counts as signed in only once the second factor
    is (`second_factor_at`). Ends at the first of: absolute lifetime, idle gap, sign-out, the
    staff user disabled."""

    __tablename__ = "staff_console_sessions"
    __table_args__ = (Index("ix_staff_console_sessions_staff", "staff_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    second_factor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
