"""Tables of the federation domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.db import Base, UTCDateTime


class LoginTransaction(Base):
    """One started login: everything the callback needs, kept server-side and used once.

    Keyed by the SHA-256 of `state`, so a database reader cannot replay a callback; `state`
    itself only ever travels in the URL.
    """

    __tablename__ = "login_transactions"
    __table_args__ = (
        CheckConstraint("channel IN ('browser', 'app')", name="channel_known"),
        Index("ix_login_transactions_expires_at", "expires_at"),
    )

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(7))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    """The redirect URI sent to VNeID: the broker's callback, or the app's own redirect."""
    return_to: Mapped[str | None] = mapped_column(String(500))
    browser_binding_hash: Mapped[str | None] = mapped_column(String(64))
    """Browser channel: hash of a cookie set at start; the callback must come from that browser."""
    app_code_challenge: Mapped[str | None] = mapped_column(String(128))
    max_age: Mapped[int | None] = mapped_column()
    """The `max_age` sent to VNeID: the ID token's `auth_time` is checked against it."""
    prompt: Mapped[str | None] = mapped_column(String(20))
    """The `prompt` sent to VNeID (`login`: sign in again whatever session VNeID holds)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
