"""Tables of the admin domain: staff users who review links."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.accounts import models as _accounts  # noqa: F401 - staff_users.account_id's target
from vssid_broker.db import Base, BigId, UTCDateTime


class StaffRole(StrEnum):
    REVIEWER = "reviewer"
    """Reads and decides review cases."""
    ADMIN = "admin"
    """Everything a reviewer does, plus unlinking identities and reading the audit trail."""


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint("role IN ('reviewer', 'admin')", name="role_known"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id, as encoded by argon2-cffi (parameters and salt included)."""
    role: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    """The staff member's own VssID account, if any: they may not decide cases about it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    """Wrong passwords since the last success, counted by the database."""
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
