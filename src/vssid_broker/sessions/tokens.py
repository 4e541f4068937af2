"""Access tokens (JWTs signed by the broker) and refresh tokens (opaque, hashed, rotated)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn, cast

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import (
    ColumnElement,
    Insert,
    Row,
    String,
    Table,
    Update,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.config import Settings
from vssid_broker.db import UTCDateTime
from vssid_broker.errors import DomainError, Unauthorized
from vssid_broker.sessions.dpop import InvalidDpopProof
from vssid_broker.sessions.keys import SigningKeys
from vssid_broker.sessions.models import RefreshToken


class InvalidGrant(DomainError):
    status = 400
    code = "invalid_grant"
    message = "Phiên đăng nhập đã hết hạn hoặc bị thu hồi. Vui lòng đăng nhập lại."


class RefreshTokenReused(InvalidGrant):
    """A rotated refresh token came back: its family has been revoked (RFC 9700 §4.14.2)."""

    def __init__(self, detail: str, *, account_id: int, family_id: str) -> None:
        super().__init__(detail)
        self.account_id = account_id
        self.family_id = family_id


class InvalidAccessToken(Unauthorized):
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}  # noqa: RUF012 - RFC 6750 §3
    code = "invalid_token"
    message = "Phiên đăng nhập không hợp lệ hoặc đã hết hạn. Vui lòng đăng nhập lại."


def _token_type(dpop_jkt: str | None) -> str:
    return "DPoP" if dpop_jkt is not None else "Bearer"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    token_type: str = "Bearer"
    """"DPoP" when both tokens are bound to the app's key (RFC 9449 §5)."""


@dataclass(frozen=True)
class FamilyView:
    family_id: str
    created_at: datetime
    last_used_at: datetime
    """A refresh token is issued at each use, so the newest one tells the last use."""
    expires_at: datetime
    user_agent: str | None


@dataclass(frozen=True)
class AccessTokenClaims:
    account_id: int
    acr: str
    channel: str
    session_id: str
    """The refresh family the token belongs to (`sid`): ending it ends the token too."""
    raw: dict[str, Any]
    account: Row[Any] = field(repr=False)  # it holds the citizen ID: never in a log line
    """The account's row, read by the same query that found the session live."""

    @property
    def dpop_jkt(self) -> str | None:
        """RFC 9449 §6.1: the thumbprint of the key the token is bound to, if any."""
        cnf = self.raw.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return jkt if isinstance(jkt, str) else None


REFRESH_TOKENS = cast(Table, RefreshToken.__table__)
ACCOUNTS = cast(Table, Account.__table__)

# A token's session is live while its refresh family is not revoked and its account is active;
# the account's row comes with the answer, so `/api/v1/me` needs no second query. Revocation
# always ends a whole family, so its newest token (the one not rotated, a single row in
# ix_refresh_tokens_live_family) answers for it however often the family was rotated.
LIVE_SESSION_ACCOUNT = select(ACCOUNTS).where(
    ACCOUNTS.c.id == bindparam("subject"),
    ACCOUNTS.c.status == "active",
    select(REFRESH_TOKENS.c.id)
    .where(
        REFRESH_TOKENS.c.family_id == bindparam("family"),
        REFRESH_TOKENS.c.rotated_at.is_(None),
        REFRESH_TOKENS.c.account_id == ACCOUNTS.c.id,
        REFRESH_TOKENS.c.revoked_at.is_(None),
    )
    .exists(),
)


def live_token(now: Any, idle_since: Any) -> list[ColumnElement[bool]]:
    """A refresh token that can still be spent: not rotated, not revoked, inside the family's
    absolute lifetime, and its family used within the idle lifetime (the newest token of a
    family was issued at its last use). Values or bind parameters."""
    tokens = REFRESH_TOKENS
    return [
        tokens.c.rotated_at.is_(None),
        tokens.c.revoked_at.is_(None),
        tokens.c.expires_at > now,
        tokens.c.issued_at > idle_since,
    ]


# What a rotated token passes on to its successor; rotation never extends the absolute lifetime.
_INHERITED = ("family_id", "account_id", "acr", "expires_at", "user_agent", "dpop_jkt")


@dataclass(frozen=True)
class RotationStatements:
    """Refresh rotation, built once per process: building SQLAlchemy statements per request
    costs more CPU than running them. Parameters: spent_hash, now, idle_since, proof_jkt,
    new_hash. None of them may be named like a column: SQLAlchemy would add a parameter named
    after a column to the UPDATE's SET clause."""

    spend: Update
    issue: Insert
    spend_and_issue: Insert
    """PostgreSQL: both in one statement (a data-modifying CTE), atomic without a transaction."""

    @classmethod
    def build(cls, *, with_proof: bool, bearer_allowed: bool) -> RotationStatements:
        tokens = REFRESH_TOKENS
        # RFC 9449 §5: a bound family is spent only with a proof of its key.
        binding: ColumnElement[bool] = (
            or_(tokens.c.dpop_jkt.is_(None), tokens.c.dpop_jkt == bindparam("proof_jkt"))
            if with_proof
            else tokens.c.dpop_jkt.is_(None)
        )
        if not bearer_allowed:
            binding = and_(binding, tokens.c.dpop_jkt.is_not(None))
        inherited = [tokens.c[name] for name in _INHERITED]
        spend = (
            update(tokens)
            .where(
                tokens.c.token_hash == bindparam("spent_hash"),
                *live_token(bindparam("now"), bindparam("idle_since")),
                binding,
                tokens.c.account_id.in_(select(Account.id).where(Account.status == "active")),
            )
            .values(rotated_at=bindparam("now"))
            .returning(*inherited)
        )
        issue = insert(tokens).values(
            token_hash=bindparam("new_hash"),
            issued_at=bindparam("now"),
            **{name: bindparam(name) for name in _INHERITED},
        )
        spent = spend.cte("spent")
        spend_and_issue = (
            insert(tokens)
            .from_select(
                ["token_hash", "issued_at", *_INHERITED],
                select(
                    bindparam("new_hash", type_=String()),
                    bindparam("now", type_=UTCDateTime()),
                    *(spent.c[name] for name in _INHERITED),
                ),
            )
            .returning(*inherited)
        )
        return cls(spend, issue, spend_and_issue)


class TokenService:
    def __init__(self, settings: Settings, keys: SigningKeys) -> None:
        self._settings = settings
        self._keys = keys
        self._rotation = {
            with_proof: RotationStatements.build(
                with_proof=with_proof, bearer_allowed=settings.bearer_tokens_allowed
            )
            for with_proof in (False, True)
        }

    async def access_token(
        self,
        session: AsyncSession,
        *,
        account_id: int,
        acr: str,
        channel: str,
        now: datetime,
        family_id: str,
        dpop_jkt: str | None = None,
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
            "sid": family_id,
        }
        if dpop_jkt is not None:
            claims["cnf"] = {"jkt": dpop_jkt}
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
        sid, sub = claims.get("sid"), str(claims["sub"])
        if not sub.isdigit():
            raise InvalidAccessToken("access token sub is not an account id")
        account = await self._live_account(session, sid, int(sub)) if isinstance(sid, str) else None
        if account is None:
            # The JWT alone would live until exp; the broker's own endpoints refuse it as soon
            # as its session is revoked, logged out at VNeID, or its account is not active.
            raise InvalidAccessToken("the token's session has ended")
        return AccessTokenClaims(
            int(sub), str(claims.get("acr")), str(claims.get("channel")), str(sid), claims, account
        )

    async def _live_account(
        self, session: AsyncSession, family_id: str, account_id: int
    ) -> Row[Any] | None:
        connection = await session.connection()
        found = await connection.execute(
            LIVE_SESSION_ACCOUNT, {"family": family_id, "subject": account_id}
        )
        return found.first()

    # --- refresh tokens -----------------------------------------------------------------------
    def new_refresh_token(
        self,
        session: AsyncSession,
        *,
        account_id: int,
        acr: str,
        now: datetime,
        user_agent: str | None = None,
        dpop_jkt: str | None = None,
    ) -> tuple[str, str]:
        """The first refresh token of a new family: (raw value, family id)."""
        raw = secrets.token_urlsafe(32)
        family_id = str(uuid.uuid4())
        session.add(
            RefreshToken(
                token_hash=hash_token(raw),
                family_id=family_id,
                account_id=account_id,
                acr=acr,
                issued_at=now,
                expires_at=now + timedelta(seconds=self._settings.refresh_token_ttl_seconds),
                user_agent=(user_agent or "")[:200] or None,
                dpop_jkt=dpop_jkt,
            )
        )
        return raw, family_id

    async def issue(
        self,
        session: AsyncSession,
        *,
        account_id: int,
        acr: str,
        channel: str,
        now: datetime,
        user_agent: str | None = None,
        dpop_jkt: str | None = None,
    ) -> IssuedTokens:
        refresh, family_id = self.new_refresh_token(
            session,
            account_id=account_id,
            acr=acr,
            now=now,
            user_agent=user_agent,
            dpop_jkt=dpop_jkt,
        )
        await session.flush()
        await self._end_families_beyond_bound(session, account_id, now)
        access = await self.access_token(
            session,
            account_id=account_id,
            acr=acr,
            channel=channel,
            now=now,
            family_id=family_id,
            dpop_jkt=dpop_jkt,
        )
        return IssuedTokens(
            access, self._settings.access_token_ttl_seconds, refresh, _token_type(dpop_jkt)
        )

    async def rotate(
        self, session: AsyncSession, raw: str, now: datetime, *, dpop_jkt: str | None = None
    ) -> IssuedTokens | None:
        """Spend a refresh token for a new pair; None when it cannot be spent (then
        `refuse_rotation` says why, and acts on a reuse).

        Spending and issuing are one statement on PostgreSQL (a data-modifying CTE), so an
        autocommit session is enough: either both rows change or neither. Elsewhere they are two
        statements and the caller's transaction holds them together.

        A family bound to a DPoP key is spent only with a proof of that key (RFC 9449 §5); a
        proof of another key, or none, changes nothing."""
        params = {
            "spent_hash": hash_token(raw),
            "now": now,
            "idle_since": now - self._idle,
            "proof_jkt": dpop_jkt,
            "new_hash": hash_token(new_raw := secrets.token_urlsafe(32)),
        }
        connection = await session.connection()
        statements = self._rotation[dpop_jkt is not None]
        if connection.dialect.name == "postgresql":
            row = (await connection.execute(statements.spend_and_issue, params)).first()
        else:
            row = (await connection.execute(statements.spend, params)).first()
            if row is not None:
                await connection.execute(statements.issue, params | row._asdict())
        if row is None:
            return None
        access = await self.access_token(
            session,
            account_id=row.account_id,
            acr=row.acr,
            channel="app",
            now=now,
            family_id=row.family_id,
            dpop_jkt=row.dpop_jkt,
        )
        return IssuedTokens(
            access, self._settings.access_token_ttl_seconds, new_raw, _token_type(row.dpop_jkt)
        )

    async def refuse_rotation(self, session: AsyncSession, raw: str, now: datetime) -> NoReturn:
        """Why `rotate` could not spend this token. A spent token coming back revokes its
        family (RFC 9700 §4.14.2): either the app or a thief has a copy, and we cannot tell
        which. Run it in a transaction: the revocation and its audit event belong together."""
        await self._revoke_family_if_reused(session, raw, now)
        await self._refuse_if_binding_failed(session, raw)
        raise InvalidGrant("refresh token unknown, expired, revoked or already used")

    async def _refuse_if_binding_failed(self, session: AsyncSession, raw: str) -> None:
        row = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == hash_token(raw), RefreshToken.rotated_at.is_(None)
            )
        )
        if row is not None and row.dpop_jkt is not None:
            raise InvalidDpopProof(
                "refresh token is bound to a DPoP key this request did not prove"
            )
        if row is not None and not self._settings.bearer_tokens_allowed:
            raise InvalidDpopProof("bearer refresh tokens are not allowed; sign in with DPoP")

    async def _revoke_family_if_reused(
        self, session: AsyncSession, raw: str, now: datetime
    ) -> None:
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
        )
        if row is not None and row.rotated_at is not None:
            await self.revoke_family(session, row.family_id, now)
            raise RefreshTokenReused(
                "a rotated refresh token was used again; its family is revoked",
                account_id=row.account_id,
                family_id=row.family_id,
            )

    @property
    def _idle(self) -> timedelta:
        return timedelta(seconds=self._settings.refresh_token_idle_seconds)

    def _live_token(self, now: datetime) -> list[ColumnElement[bool]]:
        return live_token(now, now - self._idle)

    async def _end_families_beyond_bound(
        self, session: AsyncSession, account_id: int, now: datetime
    ) -> None:
        """At most `refresh_families_per_account` signed-in installations; the oldest ends.

        Two logins at the same moment may leave one family too many until the next login:
        the bound limits how many stolen sessions can pile up, it is not a uniqueness rule.
        """
        live_families = select(RefreshToken.family_id).where(
            RefreshToken.account_id == account_id, *self._live_token(now)
        )
        beyond = list(
            await session.scalars(
                select(RefreshToken.family_id)
                .where(RefreshToken.family_id.in_(live_families))
                .group_by(RefreshToken.family_id)
                .order_by(func.min(RefreshToken.issued_at).desc(), RefreshToken.family_id)
                .offset(self._settings.refresh_families_per_account)
            )
        )
        if beyond:
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id.in_(beyond), RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    async def revoke_family(self, session: AsyncSession, family_id: str, now: datetime) -> int:
        result = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def live_families(
        self, session: AsyncSession, account_id: int, now: datetime
    ) -> list[FamilyView]:
        """The account's signed-in app installations, newest first."""
        live = select(RefreshToken.family_id).where(
            RefreshToken.account_id == account_id, *self._live_token(now)
        )
        rows = await session.execute(
            select(
                RefreshToken.family_id,
                func.min(RefreshToken.issued_at),
                func.max(RefreshToken.issued_at),
                func.max(RefreshToken.expires_at),
                func.max(RefreshToken.user_agent),  # the same on every token of a family
            )
            .where(RefreshToken.family_id.in_(live))
            .group_by(RefreshToken.family_id)
            .order_by(func.min(RefreshToken.issued_at).desc())
        )
        return [FamilyView(*row) for row in rows]

    async def revoke_account_family(
        self, session: AsyncSession, account_id: int, family_id: str, now: datetime
    ) -> bool:
        result = await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.account_id == account_id,
                RefreshToken.family_id == family_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_account_families(
        self, session: AsyncSession, account_id: int, now: datetime
    ) -> int:
        """End every refresh family of the account; returns how many families were live."""
        families = set(
            await session.scalars(
                update(RefreshToken)
                .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(RefreshToken.family_id)
                .execution_options(synchronize_session=False)
            )
        )
        return len(families)

    async def revoke(self, session: AsyncSession, raw: str, now: datetime) -> int | None:
        """RFC 7009: revoking a refresh token, or an access token, ends the whole family (the
        app's signed-in session). Returns the account id."""
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
        )
        if row is None:
            try:
                access = await self.verify_access_token(session, raw, now)
            except InvalidAccessToken:
                return None  # unknown, expired or already ended: nothing left to revoke
            await self.revoke_family(session, access.session_id, now)
            return access.account_id
        await self.revoke_family(session, row.family_id, now)
        return row.account_id
