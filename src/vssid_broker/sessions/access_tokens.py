"""Access tokens: JWTs the broker signs (RFC 9068 `at+jwt`), short-lived, and checked against
the live session on every call to the broker's own endpoints (on PostgreSQL through the
process's live-session cache, which the database keeps right: `live_cache.py`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.accounts.schemas import AccountJson
from vssid_broker.config import Settings
from vssid_broker.errors.tokens import InvalidAccessToken
from vssid_broker.passwords import PASSWORD_ACR
from vssid_broker.sessions import broker_jwt
from vssid_broker.sessions.keys import SigningKeys
from vssid_broker.sessions.live_cache import LiveAccount, LiveSessionCache
from vssid_broker.sessions.models import RefreshToken


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
    kept: LiveAccount | None = field(default=None, repr=False, compare=False)
    """The live-session cache's entry for `account`, where the cache keeps it."""

    def account_json(self) -> bytes:
        """`AccountOut`'s JSON for the account (`/api/v1/me`): where the cache keeps the row,
        the rendering without the citizen ID is kept beside it, and only the ID is opened
        (~4 µs) and put in per call; the ID is never kept in clear."""
        kept = self.kept
        rendered = kept.json if kept is not None else None
        if rendered is None:
            rendered = AccountJson.of(self.account)
            if kept is not None:
                kept.json = rendered
        return rendered.with_citizen_id(Account.citizen_id.open_from(self.account))

    @property
    def auth_time(self) -> int | None:
        """When the person last authenticated at VNeID (RFC 9470); None: a password sign-in."""
        value = self.raw.get("auth_time")
        return int(value) if isinstance(value, int | float) else None

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
# The row keeps the citizen ID sealed (here and in the live-session cache); `AccountOut.of`
# opens it with the row's own BHXH code, as reading an `Account` does.
LIVE_SESSION_ACCOUNT = select(*ACCOUNTS.c).where(
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


VERIFIED_TOKENS_KEPT = 10_000
"""Access tokens remembered as checked (a few hundred bytes each), least recently used first."""


class AccessTokens:
    def __init__(
        self, settings: Settings, keys: SigningKeys, live_sessions: LiveSessionCache | None = None
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._live_sessions = live_sessions
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._verified_under: object = None
        self.kind = broker_jwt.TokenKind(
            typ="at+jwt",  # RFC 9068 §2.1
            audience=settings.access_token_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )

    async def issue(
        self,
        session: AsyncSession,
        *,
        account_id: int,
        acr: str,
        channel: str,
        now: datetime,
        family_id: str,
        auth_time: datetime | None = None,
        dpop_jkt: str | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "acr": acr,
            # A password sign-in is not a VNeID login.
            "amr": ["pwd"] if acr == PASSWORD_ACR else ["vneid"],
            "channel": channel,
            "sid": family_id,
        }
        if auth_time is not None:
            # RFC 9068 §2.2.1 / RFC 9470 §6.1: when the person last authenticated at VNeID.
            claims["auth_time"] = int(auth_time.timestamp())
        if dpop_jkt is not None:
            claims["cnf"] = {"jkt": dpop_jkt}
        return await broker_jwt.sign(
            session,
            self._keys,
            self._settings,
            self.kind,
            subject=str(account_id),
            now=now,
            claims=claims,
        )

    async def verify(self, session: AsyncSession, raw: str, now: datetime) -> AccessTokenClaims:
        claims = await self._verified_claims(session, raw, now)
        sid, sub = _session_of(claims)
        account = await self._live_account(session, sid, sub) if sid is not None else None
        return _claims(claims, sid, sub, *account) if account else _claims(claims, sid, sub)

    async def verify_opening(
        self,
        sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        raw: str,
        now: datetime,
    ) -> AccessTokenClaims:
        """`verify`, opening a session from `sessions` only when this process's caches cannot
        answer alone. They can for a token already checked under the current keys whose
        session the live-session cache knows live: the same two answers `verify` takes from
        them, kept right by the same notifications (a revocation reaches every process before
        the revoking request answers), so a call costs no session and no query."""
        claims = self._remembered(raw, now)
        if claims is None:
            async with sessions() as session:
                return await self.verify(session, raw, now)
        sid, sub = _session_of(claims)
        cache = self._live_sessions
        kept = cache.find(sid, sub) if cache is not None and sid is not None else None
        if kept is not None:
            return _claims(claims, sid, sub, kept.account, kept)
        if sid is None:
            return _claims(claims, sid, sub)
        async with sessions() as session:
            account = await self._read_live_account(session, sid, sub)
        return _claims(claims, sid, sub, *account) if account else _claims(claims, sid, sub)

    def _remembered(self, raw: str, now: datetime) -> dict[str, Any] | None:
        """The claims of a token this process checked under the keys it holds now, unexpired;
        None if there is none, or the keys are due to be read again."""
        if self._live_sessions is None:
            return None
        keys = self._keys.loaded_verification_keys(now)
        if keys is None or keys is not self._verified_under:
            return None
        claims = self._verified.get(raw)
        if claims is None or claims["exp"] <= now.timestamp():
            return None
        self._verified.move_to_end(raw)
        return dict(claims)

    async def _verified_claims(
        self, session: AsyncSession, raw: str, now: datetime
    ) -> dict[str, Any]:
        """The token's claims once its signature and claims were checked. Where the live-session
        cache is, a token already checked under the same verification keys is not checked
        again (the signature checks were most of a call's CPU once the query was gone): only
        its expiry, the one check that changes with time. New keys forget every such token."""
        if self._live_sessions is not None:
            keys = await self._keys.verification_keys(session, now)
            if keys is not self._verified_under:
                self._verified.clear()
                self._verified_under = keys
            remembered = self._remembered(raw, now)
            if remembered is not None:
                return remembered
        try:
            claims = await broker_jwt.verify(
                session, self._keys, self._settings, self.kind, raw, now
            )
        except broker_jwt.BrokerTokenRejected as error:
            raise InvalidAccessToken(f"access token rejected: {error.reason}") from error
        if self._live_sessions is not None:
            self._verified[raw] = dict(claims)
            if len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)
        return claims

    async def _live_account(
        self, session: AsyncSession, family_id: str, account_id: int
    ) -> tuple[Row[Any], LiveAccount | None] | None:
        """The account's row if the session is live, with the cache's entry for it if kept."""
        cache = self._live_sessions
        if cache is not None:
            remembered = cache.find(family_id, account_id)
            if remembered is not None:
                return remembered.account, remembered
        return await self._read_live_account(session, family_id, account_id)

    async def _read_live_account(
        self, session: AsyncSession, family_id: str, account_id: int
    ) -> tuple[Row[Any], LiveAccount | None] | None:
        """The query itself, its answer kept in the live-session cache."""
        cache = self._live_sessions
        generation = cache.generation if cache is not None else 0  # before the query: see put
        connection = await session.connection()
        found = await connection.execute(
            LIVE_SESSION_ACCOUNT, {"family": family_id, "subject": account_id}
        )
        account = found.first()
        if account is None:
            return None
        kept = cache.put(family_id, account_id, account, generation) if cache is not None else None
        return account, kept


def _session_of(claims: dict[str, Any]) -> tuple[str | None, int]:
    """The token's refresh family (`sid`) and account (`sub`)."""
    sid, sub = claims.get("sid"), str(claims["sub"])
    if not sub.isdigit():
        raise InvalidAccessToken("access token sub is not an account id")
    return (sid if isinstance(sid, str) else None), int(sub)


def _claims(
    claims: dict[str, Any],
    sid: str | None,
    sub: int,
    account: Row[Any] | None = None,
    kept: LiveAccount | None = None,
) -> AccessTokenClaims:
    if sid is None or account is None:
        # The JWT alone would live until exp; the broker's own endpoints refuse it as soon
        # as its session is revoked, logged out at VNeID, or its account is not active.
        raise InvalidAccessToken("the token's session has ended")
    return AccessTokenClaims(
        sub, str(claims.get("acr")), str(claims.get("channel")), sid, claims, account, kept
    )
