"""Refresh tokens: opaque, stored hashed, rotated at every use, in families (one per sign-in).

The refresh grant's steps carry the names authlib gives them (RFC 6749 §6):
validate the token request → authenticate the refresh token → issue its successor → revoke the
old one. Here the last three are one statement (`rotate`): on PostgreSQL a data-modifying CTE
spends the old token and inserts the new one atomically across processes, so two requests with
the same token can never both win. A token that cannot be spent is explained by `refuse`, which
also acts on a reuse: a rotated token coming back ends its whole family (RFC 9700 §4.14.2).

A rotation commits before the app has the answer; when the answer is lost (a dropped
connection, a crash after the commit) the app retries with the token it still holds. Within
`VSSID_REFRESH_TOKEN_GRACE_SECONDS` of its rotation, while its successor is still unused, that
retry gets the same successor back (`replay_lost_answer`) instead of ending the family: the
successor is derived from the spent token with a server key (HMAC), so it can be recomputed and
never has to be stored. A bound family replays only with a proof of its key; outside the window,
or once the successor was used, a spent token coming back still ends the family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    String,
    Update,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker import metrics
from vssid_broker.accounts.models import Account
from vssid_broker.config import Settings
from vssid_broker.db import NOT_RUN, DriverStatement, UTCDateTime
from vssid_broker.errors.tokens import (
    InvalidDpopProof,
    InvalidGrant,
    InvalidTokenRequest,
    RefreshTokenReused,
    UnsupportedGrantType,
)
from vssid_broker.opaque_tokens import hash_token, new_token
from vssid_broker.sessions.access_tokens import REFRESH_TOKENS
from vssid_broker.sessions.live_cache import LiveSessionCache, family_notice
from vssid_broker.sessions.models import RefreshToken


@dataclass(frozen=True)
class Rotated:
    """A refresh token spent and its successor issued, with what the successor inherited."""

    refresh_token: str
    family_id: str
    account_id: int
    acr: str
    dpop_jkt: str | None
    auth_time: datetime | None = None
    """The family's last authentication at VNeID: inherited, never renewed by a refresh."""


@dataclass(frozen=True)
class FamilyView:
    family_id: str
    created_at: datetime
    last_used_at: datetime
    """A refresh token is issued at each use, so the newest one tells the last use."""
    expires_at: datetime
    user_agent: str | None


_FAMILY_VIEW = (
    RefreshToken.family_id,
    func.min(RefreshToken.issued_at),
    func.max(RefreshToken.issued_at),
    func.max(RefreshToken.expires_at),
    func.max(RefreshToken.user_agent),  # the same on every token of a family
)
"""A `FamilyView`'s columns, grouped by family."""


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
_INHERITED = (
    "family_id", "account_id", "acr", "auth_time", "expires_at", "user_agent", "dpop_jkt"
)  # fmt: skip


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


log = logging.getLogger(__name__)


class RefreshTokens:
    def __init__(
        self,
        settings: Settings,
        successor_key: bytes,
        live_sessions: LiveSessionCache | None = None,
    ) -> None:
        self._settings = settings
        self._live_sessions = live_sessions
        self._successor_key = successor_key
        self._bound = settings.refresh_families_per_account
        self._grace = timedelta(seconds=settings.refresh_token_grace_seconds)
        self._idle = timedelta(seconds=settings.refresh_token_idle_seconds)
        self._rotation = {
            with_proof: RotationStatements.build(
                with_proof=with_proof, bearer_allowed=settings.bearer_tokens_allowed
            )
            for with_proof in (False, True)
        }
        # PostgreSQL's rotation compiled once, for asyncpg to run itself (`DriverStatement`).
        self._driver_statements: dict[bool, DriverStatement] = {}

    # --- the refresh grant ---------------------------------------------------------------------
    @staticmethod
    def validate_token_request(params: dict[str, Any]) -> str:
        """RFC 6749 §6: `grant_type=refresh_token` and a `refresh_token`; returns the token."""
        if params.get("grant_type") != "refresh_token":
            raise UnsupportedGrantType("only grant_type=refresh_token is accepted here")
        raw = params.get("refresh_token")
        if not isinstance(raw, str) or not raw:
            raise InvalidTokenRequest("refresh_token is required")
        return raw

    async def rotate(
        self, session: AsyncSession, raw: str, now: datetime, *, dpop_jkt: str | None = None
    ) -> Rotated | None:
        """Authenticate the refresh token, issue its successor and revoke it, in one step; None
        when it cannot be spent (then `refuse` says why, and acts on a reuse).

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
            "new_hash": hash_token(new_raw := self._successor_of(raw)),
        }
        connection = await session.connection()
        statements = self._rotation[dpop_jkt is not None]
        row: Any
        if connection.dialect.name == "postgresql":
            driver = self._driver_rotation(dpop_jkt is not None, connection.dialect)
            row = await driver.fetchrow(connection, params)
            if row is NOT_RUN:
                result = await connection.execute(statements.spend_and_issue, params)
                row = result.mappings().first()
        else:
            row = (await connection.execute(statements.spend, params)).mappings().first()
            if row is not None:
                await connection.execute(statements.issue, params | dict(row))
        if row is None:
            return None
        metrics.REFRESH_ROTATIONS.inc()
        return Rotated(
            new_raw,
            row["family_id"],
            row["account_id"],
            row["acr"],
            row["dpop_jkt"],
            row["auth_time"],
        )

    def _driver_rotation(self, with_proof: bool, dialect: Dialect) -> DriverStatement:
        if with_proof not in self._driver_statements:
            statement = self._rotation[with_proof].spend_and_issue
            self._driver_statements[with_proof] = DriverStatement.of(statement, dialect)
        return self._driver_statements[with_proof]

    def _successor_of(self, raw: str) -> str:
        """The token that replaces `raw`: as unguessable as a random one without the key, and
        the same every time, so a retry can be answered with it."""
        digest = hmac.new(self._successor_key, raw.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    async def replay_lost_answer(
        self, session: AsyncSession, raw: str, now: datetime, *, dpop_jkt: str | None = None
    ) -> Rotated | None:
        """The successor of a token rotated moments ago whose answer the app never got; None
        when this is not such a retry (then `refuse` says why, and a reuse ends the family)."""
        if not self._grace:  # off: not even a copy racing the rotation (its `now` before it)
            return None
        spent = await self.find(session, raw)
        if (
            spent is None
            or spent.rotated_at is None
            or spent.revoked_at is not None
            or now - spent.rotated_at > self._grace
            or (spent.dpop_jkt is not None and spent.dpop_jkt != dpop_jkt)
            or (spent.dpop_jkt is None and not self._settings.bearer_tokens_allowed)
        ):
            return None
        successor_raw = self._successor_of(raw)
        successor = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == hash_token(successor_raw),
                RefreshToken.family_id == spent.family_id,
                *self._live_token(now),
                RefreshToken.account_id.in_(select(Account.id).where(Account.status == "active")),
            )
        )
        if successor is None:
            return None
        log.info("refresh retried within the grace window; the same successor answered")
        return Rotated(
            successor_raw,
            successor.family_id,
            successor.account_id,
            successor.acr,
            successor.dpop_jkt,
            successor.auth_time,
        )

    async def refuse(self, session: AsyncSession, raw: str, now: datetime) -> NoReturn:
        """Why `rotate` could not spend this token. A spent token coming back revokes its
        family (RFC 9700 §4.14.2): either the app or a thief has a copy, and we cannot tell
        which. Run it in a transaction: the revocation and its audit event belong together."""
        await self._revoke_family_if_reused(session, raw, now)
        await self._refuse_if_binding_failed(session, raw, now)
        raise InvalidGrant("refresh token unknown, expired, revoked or already used")

    async def _refuse_if_binding_failed(
        self, session: AsyncSession, raw: str, now: datetime
    ) -> None:
        """A token that could be spent but for its binding. A revoked or expired one is not
        such a token, whatever the proof: `invalid_grant` sends the person back to sign in,
        where `invalid_dpop_proof` would only make the app retry with another proof."""
        row = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == hash_token(raw), *self._live_token(now)
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
        row = await self.find(session, raw)
        if row is not None and row.rotated_at is not None:
            await self.revoke_family(session, row.family_id, now)
            metrics.REFRESH_REUSE_DETECTIONS.inc()
            metrics.REVOCATIONS.labels("refresh_reuse").inc()
            raise RefreshTokenReused(
                "a rotated refresh token was used again; its family is revoked",
                account_id=row.account_id,
                family_id=row.family_id,
            )

    # --- families ------------------------------------------------------------------------------
    async def start_family(
        self,
        session: AsyncSession,
        *,
        account_id: int,
        acr: str,
        now: datetime,
        auth_time: datetime | None = None,
        user_agent: str | None = None,
        dpop_jkt: str | None = None,
    ) -> tuple[str, str]:
        """The first refresh token of a new family: (raw value, family id). At most
        `refresh_families_per_account` families stay live; the oldest ends."""
        raw = new_token()
        family_id = str(uuid.uuid4())
        first = insert(REFRESH_TOKENS).values(
            token_hash=hash_token(raw),
            family_id=family_id,
            account_id=account_id,
            acr=acr,
            auth_time=auth_time,
            issued_at=now,
            expires_at=now + timedelta(seconds=self._settings.refresh_token_ttl_seconds),
            user_agent=(user_agent or "")[:200] or None,
            dpop_jkt=dpop_jkt,
        )
        if (await session.connection()).dialect.name == "postgresql":
            # One round trip: the insert rides along as a data-modifying CTE. The query below
            # it does not see the new family (same snapshot), which would be the newest: one
            # fewer of the others may stay.
            new = first.returning(REFRESH_TOKENS.c.family_id).cte("new_family")
            beyond = await session.scalars(
                self._families_beyond(account_id, now, keep=self._bound - 1).add_cte(new)
            )
        else:
            await session.execute(first)
            beyond = await session.scalars(self._families_beyond(account_id, now, keep=self._bound))
        await self._end_families(session, list(beyond), now)
        return raw, family_id

    async def find(self, session: AsyncSession, raw: str) -> RefreshToken | None:
        return await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
        )

    def _live_token(self, now: datetime) -> list[ColumnElement[bool]]:
        return live_token(now, now - self._idle)

    def _families_beyond(self, account_id: int, now: datetime, *, keep: int) -> Select[Any]:
        """The account's live families past the newest `keep`. Two logins at the same moment
        may leave one family too many until the next login: the bound limits how many stolen
        sessions can pile up, it is not a uniqueness rule."""
        live_families = select(RefreshToken.family_id).where(
            RefreshToken.account_id == account_id, *self._live_token(now)
        )
        return (
            select(RefreshToken.family_id)
            .where(RefreshToken.family_id.in_(live_families))
            .group_by(RefreshToken.family_id)
            .order_by(func.min(RefreshToken.issued_at).desc(), RefreshToken.family_id)
            .offset(keep)
        )

    async def _end_families(
        self, session: AsyncSession, families: list[str], now: datetime
    ) -> None:
        if families:
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id.in_(families), RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            self._revoked(session, families)

    async def revoke_family(self, session: AsyncSession, family_id: str, now: datetime) -> int:
        result = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        revoked = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if revoked:
            self._revoked(session, [family_id])
        return revoked

    def _revoked(self, session: AsyncSession, family_ids: list[str]) -> None:
        """Families this transaction ended: the live-session cache forgets them at its commit,
        and the request answers once every process has (`live_cache.py`)."""
        if self._live_sessions is not None and family_ids:
            notices = [family_notice(family_id) for family_id in family_ids]
            self._live_sessions.revoking(session, notices)

    async def live_families(
        self, session: AsyncSession, account_id: int, now: datetime
    ) -> list[FamilyView]:
        """The account's signed-in app installations, newest first."""
        live = select(RefreshToken.family_id).where(
            RefreshToken.account_id == account_id, *self._live_token(now)
        )
        rows = await session.execute(
            select(*_FAMILY_VIEW)
            .where(RefreshToken.family_id.in_(live))
            .group_by(RefreshToken.family_id)
            .order_by(func.min(RefreshToken.issued_at).desc())
        )
        return [FamilyView(*row) for row in rows]

    async def account_families(
        self, session: AsyncSession, account_id: int
    ) -> list[tuple[FamilyView, datetime | None]]:
        """Every family of the account the purge has not removed yet, live or ended, newest
        first, each with when it was revoked (None if it was not): the person's export."""
        rows = await session.execute(
            select(
                *_FAMILY_VIEW,
                # A revocation ends the whole family: every token not yet revoked gets the time.
                func.max(RefreshToken.revoked_at),
            )
            .where(RefreshToken.account_id == account_id)
            .group_by(RefreshToken.family_id)
            .order_by(func.min(RefreshToken.issued_at).desc())
        )
        return [(FamilyView(*row[:5]), row[5]) for row in rows]

    @property
    def idle_lifetime(self) -> timedelta:
        """A family unused this long has ended (its newest token was issued at its last use)."""
        return self._idle

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
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        self._revoked(session, [family_id])
        return True

    async def revoke_account_families(
        self, session: AsyncSession, account_id: int, now: datetime
    ) -> int:
        """End every refresh family of the account; returns how many families were live."""
        return await self.revoke_families_of(session, [account_id], now)

    async def revoke_families_of(
        self, session: AsyncSession, account_ids: Sequence[int], now: datetime
    ) -> int:
        """End every refresh family of these accounts with one statement; how many were live."""
        families = set(
            await session.scalars(
                update(RefreshToken)
                .where(RefreshToken.account_id.in_(account_ids), RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(RefreshToken.family_id)
                .execution_options(synchronize_session=False)
            )
        )
        self._revoked(session, sorted(families))
        return len(families)
