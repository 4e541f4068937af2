"""Tables of the linking domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.db import Base, BigId, UTCDateTime, utcnow


class FederatedLink(Base):
    """A VNeID identity (issuer, subject) bound to one VssID account.

    The database enforces both directions: one link per (provider, subject) and one VNeID
    identity per account, so two simultaneous first logins cannot make two links.
    """

    __tablename__ = "federated_links"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_federated_links_identity"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    citizen_id: Mapped[str] = mapped_column(String(12))
    method: Mapped[str] = mapped_column(String(40))
    """How the link came to be: `citizen_id_match` (automatic), `staff_review`, ..."""
    linked_by: Mapped[str] = mapped_column(String(100))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
