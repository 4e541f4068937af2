"""One staff sign-in, top to bottom: the password, then the second factor (TOTP, or a recovery
code), on either face.

- The admin API signs in in one request: password and code together, answered with a
  short-lived bearer token (`sign_in_for_api`).
- The console signs in in two: the password opens a console session (`start_console_sign_in`),
  the second factor completes it under a new cookie value (`complete_console_sign_in`); a first
  sign-in enrols the authenticator instead (`offer_enrolment`, `enrol`), and shows the recovery
  codes once.

Every refusal (wrong password, wrong code, lockout) is recorded against the username in a
transaction of its own, then raised on: the refusal is the caller's to answer. The rate limits
of password sign-ins are the HTTP face's (`web.rate_limiting.password_attempt`), as for the
person's password sign-in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.admin import console_sessions, second_factor
from vssid_broker.admin import service as staff
from vssid_broker.admin.models import StaffConsoleSession, StaffUser
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.context import BrokerContext

SignedInConsole = tuple[StaffConsoleSession, StaffUser]
"""A console session (half or fully signed in) and its staff member."""


async def sign_in_for_api(
    ctx: BrokerContext, username: str, password: str, code: str, *, request_id: str
) -> tuple[str, StaffUser]:
    """Password and second factor at once; the staff token and whose it is."""
    async with _password_checked(ctx, username, password, request_id) as (session, user):
        now = ctx.clock()
        factor = await staff.check_second_factor(session, user, code, ctx.keys, now)
        token = await staff.issue_staff_token(session, ctx.keys, ctx.settings, user, now)
        _signed_in(session, user, now, request_id, channel="api", factor=factor)
    return token, user


async def start_console_sign_in(
    ctx: BrokerContext, username: str, password: str, *, request_id: str
) -> tuple[str, bool]:
    """The console's first step: the new session's cookie value, and whether the staff member
    has an authenticator enrolled (else the next step enrols one)."""
    async with _password_checked(ctx, username, password, request_id) as (session, user):
        raw = console_sessions.start(session, user, now=ctx.clock(), settings=ctx.settings)
        return raw, user.totp_enrolled_at is not None


async def complete_console_sign_in(
    ctx: BrokerContext, console: SignedInConsole, code: str, *, request_id: str
) -> str:
    """The console's second step: the code checked, the session completed; its new cookie
    value."""
    session_row, user = console
    now = ctx.clock()
    async with _refusals_recorded(ctx, user.username, now, request_id), ctx.db.begin() as session:
        user = await session.get_one(StaffUser, user.id)
        factor = await staff.check_second_factor(session, user, code, ctx.keys, now)
        raw = await console_sessions.complete(session, session_row, now)
        _signed_in(session, user, now, request_id, channel="console", factor=factor)
    return raw


@dataclass(frozen=True)
class Offer:
    """An authenticator secret to enrol, as text and as a QR code."""

    secret: str
    qr_svg: str


async def offer_enrolment(ctx: BrokerContext, user_id: int) -> Offer:
    async with ctx.db.begin() as session:
        user = await session.get_one(StaffUser, user_id)
        secret = second_factor.offer_secret(user, ctx.keys)
    uri = second_factor.provisioning_uri(secret, user.username)
    return Offer(secret, second_factor.qr_svg(uri))


@dataclass(frozen=True)
class Enrolled:
    raw: str
    """The completed console session's new cookie value."""
    recovery_codes: list[str]
    """Shown once."""


async def enrol(
    ctx: BrokerContext, console: SignedInConsole, code: str, *, request_id: str
) -> Enrolled | None:
    """A first sign-in's second step: the offered secret confirmed by a code from the
    authenticator, which completes the session. None when the code does not match."""
    session_row, user = console
    now = ctx.clock()
    async with ctx.db.begin() as session:
        user = await session.get_one(StaffUser, user.id)
        codes = await second_factor.confirm_enrolment(session, user, code, ctx.keys, now)
        if codes is None:
            return None
        raw = await console_sessions.complete(session, session_row, now)
        audit.record(
            session, event_type=AuditEventType.STAFF_SECOND_FACTOR_ENROLLED, outcome="totp",
            now=now, actor=f"staff:{user.username}", request_id=request_id,
        )  # fmt: skip
    return Enrolled(raw, codes)


async def console_session(ctx: BrokerContext, raw: str | None) -> SignedInConsole | None:
    """The live console session of a cookie value, with its staff member."""
    async with ctx.db.begin() as session:
        return await console_sessions.find(session, raw, ctx.clock(), ctx.settings)


async def sign_out(ctx: BrokerContext, console: SignedInConsole, *, request_id: str) -> None:
    session_row, user = console
    now = ctx.clock()
    async with ctx.db.begin() as session:
        await console_sessions.end(session, session_row.id, now)
        audit.record(
            session, event_type=AuditEventType.STAFF_SIGN_OUT, outcome="succeeded", now=now,
            actor=f"staff:{user.username}", request_id=request_id,
        )  # fmt: skip


@asynccontextmanager
async def _password_checked(
    ctx: BrokerContext, username: str, password: str, request_id: str
) -> AsyncIterator[tuple[AsyncSession, StaffUser]]:
    """The password step of every staff sign-in: the check off the event loop and outside the
    transaction, then the transaction in which the caller goes on with the user."""
    now = ctx.clock()
    verdict = await staff.verify_password_of(
        ctx.autocommit, username, password, now=now, unknown=ctx.rate_limits
    )
    async with _refusals_recorded(ctx, username, now, request_id), ctx.db.begin() as session:
        user = await staff.authenticate(session, verdict, now=now, unknown=ctx.rate_limits)
        yield session, user


@asynccontextmanager
async def _refusals_recorded(
    ctx: BrokerContext, username: str, now: datetime, request_id: str
) -> AsyncIterator[None]:
    """A refusal raised inside (password, lockout, second factor) is recorded against the
    username once the sign-in's own transaction has rolled back, then raised on."""
    try:
        yield
    except staff.SIGN_IN_REFUSALS as refusal:
        async with ctx.db.begin() as session:
            await staff.record_refused_sign_in(
                session, username, refusal, now=now, settings=ctx.settings, request_id=request_id
            )
        raise


def _signed_in(
    session: AsyncSession,
    user: StaffUser,
    now: datetime,
    request_id: str,
    *,
    channel: str,
    factor: str,
) -> None:
    audit.record(
        session, event_type=AuditEventType.STAFF_SIGN_IN, outcome="succeeded", now=now,
        actor=f"staff:{user.username}", request_id=request_id, channel=channel,
        second_factor=factor,
    )  # fmt: skip
