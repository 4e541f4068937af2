"""Access tokens (JWTs signed by the broker) and refresh tokens (opaque, hashed, rotated)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.config import Settings
from vssid_broker.errors import DomainError, Unauthorized
from vssid_broker.sessions.keys import SigningKeys
from vssid_broker.sessions.models import RefreshToken


class InvalidGrant(DomainError):
    status = 400
    code = "invalid_grant"
    message = "Phiên đăng nhập đã hết hạn hoặc bị thu hồi. Vui lòng đăng nhập lại."


class InvalidAccessToken(Unauthorized):
    code = "invalid_token"
    message = "Phiên đăng nhập không hợp lệ hoặc đã hết hạn. Vui lòng đăng nhập lại."


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True)
class AccessTokenClaims:
    account_id: int
    acr: str
    channel: str
    raw: dict[str, Any]


class TokenService:
    def __init__(self, settings: Settings, keys: SigningKeys) -> None:
        self._settings = settings
        self._keys = keys

    async def access_token(
        self, session: AsyncSession, *, account_id: int, acr: str, channel: str, now: datetime
    ) -> str:
        key = await self._keys.active(session, now)
        issued = int(now.timestamp())
        claims = {
            "iss": self._settings.public_base_url,
            "sub": str(account_id),
            "aud": self._settings.access_token_audience,
            "iat": issued,
            "exp": issued + self._settings.access_token_ttl_seconds,
            "jti": secrets.token_urlsafe(16),
            "acr": acr,
            # A password sign-in (accounts.passwords.PASSWORD_ACR) is not a VNeID login.
            "amr": ["pwd"] if acr == "vssid:password" else ["vneid"],
            "channel": channel,
        }
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}  # RFC 9068 token type
        return jwt.encode(header, claims, key.private, algorithms=[key.alg])

    async def verify_access_token(
        self, session: AsyncSession, raw: str, now: datetime
    ) -> AccessTokenClaims:
        keys = await self._keys.verification_keys(session, now)
        try:
            token = jwt.decode(raw, keys, algorithms=[self._settings.signing_alg])
            JWTClaimsRegistry(
                now=int(now.timestamp()),
                iss={"essential": True, "value": self._settings.public_base_url},
                aud={"essential": True, "value": self._settings.access_token_audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as error:
            raise InvalidAccessToken(f"access token rejected: {type(error).__name__}") from error
        if token.header.get("typ") != "at+jwt":
            raise InvalidAccessToken("not an access token")
        claims = dict(token.claims)
        return AccessTokenClaims(
            int(claims["sub"]), str(claims.get("acr")), str(claims.get("channel")), claims
        )

    # --- refresh tokens -----------------------------------------------------------------------
    def new_refresh_token(
        self,
        session: AsyncSession,
        *,
        account_id: int,
        acr: str,
        now: datetime,
        family_id: str | None = None,
        family_expires_at: datetime | None = None,
    ) -> str:
        raw = secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                token_hash=hash_token(raw),
                family_id=family_id or str(uuid.uuid4()),
                account_id=account_id,
                acr=acr,
                issued_at=now,
                expires_at=family_expires_at
                or now + timedelta(seconds=self._settings.refresh_token_ttl_seconds),
            )
        )
        return raw

    async def issue(
        self, session: AsyncSession, *, account_id: int, acr: str, channel: str, now: datetime
    ) -> IssuedTokens:
        refresh = self.new_refresh_token(session, account_id=account_id, acr=acr, now=now)
        access = await self.access_token(
            session, account_id=account_id, acr=acr, channel=channel, now=now
        )
        return IssuedTokens(access, self._settings.access_token_ttl_seconds, refresh)

    async def rotate(self, session: AsyncSession, raw: str, now: datetime) -> IssuedTokens:
        """Spend a refresh token for a new pair. A spent token coming back revokes its family
        (RFC 9700 §4.14.2): either the app or a thief has a copy, and we cannot tell which."""
        spent = await session.scalar(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == hash_token(raw),
                RefreshToken.rotated_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(rotated_at=now)
            .returning(RefreshToken)
            .execution_options(synchronize_session=False)
        )
        if spent is None:
            await self._revoke_family_if_reused(session, raw, now)
            raise InvalidGrant("refresh token unknown, expired, revoked or already used")
        refresh = self.new_refresh_token(
            session,
            account_id=spent.account_id,
            acr=spent.acr,
            now=now,
            family_id=spent.family_id,
            family_expires_at=spent.expires_at,  # rotation never extends the absolute lifetime
        )
        access = await self.access_token(
            session, account_id=spent.account_id, acr=spent.acr, channel="app", now=now
        )
        return IssuedTokens(access, self._settings.access_token_ttl_seconds, refresh)

    async def _revoke_family_if_reused(
        self, session: AsyncSession, raw: str, now: datetime
    ) -> None:
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
        )
        if row is not None and row.rotated_at is not None:
            await self.revoke_family(session, row.family_id, now)

    async def revoke_family(self, session: AsyncSession, family_id: str, now: datetime) -> int:
        result = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def revoke(self, session: AsyncSession, raw: str, now: datetime) -> int | None:
        """RFC 7009: revoking a refresh token ends its whole family. Returns the account id."""
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
        )
        if row is None:
            return None
        await self.revoke_family(session, row.family_id, now)
        return row.account_id
