"""Tables of the sessions domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vssid_broker.db import Base, BigId, UTCDateTime
from vssid_broker.sealing import SealedPlace

SIGNING_KEY_PRIVATE_JWK = SealedPlace("signing_keys", "private_jwk_encrypted", owner=("kid",))
"""A private signing key is bound to its own key id (the row's primary key, never changed)."""
SESSION_VNEID_ID_TOKEN = SealedPlace(
    "browser_sessions", "vneid_id_token_sealed", owner=("session_hash",)
)
"""VNeID's ID token is bound to the browser session it came with (its primary key: the hash
of the cookie, made before the token is sealed, never changed)."""


class SigningKey(Base):
    """A key the broker signs access tokens with; the private part is encrypted (JWE) at rest."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signs_from: Mapped[datetime] = mapped_column(UTCDateTime)
    """Published before this moment, signing after it: verifiers learn a key before they see it."""
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """No longer signs; stays published until tokens it signed have expired."""


class RefreshToken(Base):
    """One refresh token of the app, stored only as a hash; rotation chains form a family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family", "family_id"),
        # The newest token of each family (the only one not rotated): the live-session check.
        Index(
            "ix_refresh_tokens_live_family",
            "family_id",
            sqlite_where=text("rotated_at IS NULL"),
            postgresql_where=text("rotated_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    acr: Mapped[str] = mapped_column(String(100))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the person last authenticated at VNeID for this family (RFC 9470): copied to every
    successor, so a refresh never makes a sign-in fresh. None for a password sign-in."""
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(200))
    """The device that signed in, shown to the person in their list of sessions."""
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    """Thumbprint of the app's DPoP key (RFC 9449 §5): only that key can use the family."""


class BrowserSession(Base):
    """A signed-in browser; the cookie holds a random value, the table only its hash."""

    __tablename__ = "browser_sessions"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="ordered_times"),
        Index("ix_browser_sessions_vneid_sid", "vneid_sid"),
    )

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    acr: Mapped[str] = mapped_column(String(100))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the person last authenticated at VNeID (the ID token's `auth_time`): step-up
    compares it with `VSSID_STEP_UP_MAX_AGE_SECONDS`. None for a password sign-in."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Absolute end: activity never extends it."""
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    """Names the session in the person's list; the cookie value is never shown or stored."""
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Moves with every request; the idle timeout counts from here."""
    csrf_token: Mapped[str] = mapped_column(String(64))
    """Synchronizer token for this session's forms (OWASP CSRF cheat sheet)."""
    user_agent: Mapped[str | None] = mapped_column(String(200))
    vneid_id_token_sealed: Mapped[str | None] = mapped_column(Text)
    """VNeID's ID token, encrypted (JWE) under the key-encryption key: the `id_token_hint`
    for RP-initiated logout, unreadable from a database dump."""
    vneid_sid: Mapped[str | None] = mapped_column(String(255))
    """VNeID's session the login came from (the ID token's `sid`): front-channel and sid-only
    back-channel logout name it, and every broker session born of it ends."""


class UsedJti(Base):
    """A `jti` already accepted (logout tokens, DPoP proofs): the primary key makes it single use
    across every broker process. Rows may be deleted once `expires_at` has passed."""

    __tablename__ = "used_jtis"
    __table_args__ = (
        PrimaryKeyConstraint("purpose", "jti"),
        Index("ix_used_jtis_expires_at", "expires_at"),
    )

    purpose: Mapped[str] = mapped_column(String(20))
    jti: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
