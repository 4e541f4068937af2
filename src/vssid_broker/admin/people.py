"""What staff do for a person: find them, see their links, sessions and cases, end their
sessions, lock and unlock their account. Every change is audited with the staff member's
reason; citizen IDs reach staff masked unless they ask to see one (`reveal_citizen_id`,
audited too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import Account, AccountStatus
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors.staff import AccountStatusUnchanged
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sealing import has_blind_index
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.sessions.schemas import SessionView


@dataclass(frozen=True)
class Person:
    account: Account
    links: list[FederatedLink]
    sessions: list[SessionView]
    cases: list[ReviewCase]


async def person(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    now: datetime,
    *,
    browser_idle_seconds: int,
) -> Person:
    account = await accounts.get_account(session, account_id)
    links = list(
        await session.scalars(select(FederatedLink).where(FederatedLink.account_id == account_id))
    )
    live = await sessions.list_sessions(
        session, refresh, account_id, now, browser_idle_seconds=browser_idle_seconds
    )
    # Candidate ids live in a JSON list; a person has a handful of cases, found by their
    # citizen ID (through its blind index: the column itself is sealed) or by the link's subject.
    subjects = [link.subject for link in links]
    conditions: list[ColumnElement[bool]] = [ReviewCase.subject.in_(subjects)] if subjects else []
    if account.citizen_id:
        conditions.append(has_blind_index(ReviewCase.citizen_id_index, account.citizen_id))
    cases = (
        list(
            await session.scalars(
                select(ReviewCase)
                .where(or_(*conditions))
                .order_by(ReviewCase.created_at.desc())
                .limit(50)
            )
        )
        if conditions
        else []
    )
    return Person(account, links, live, cases)


async def end_sessions(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    *,
    actor: str,
    reason: str,
    now: datetime,
    request_id: str | None,
) -> sessions.EndedSessions:
    await accounts.get_account(session, account_id)
    ended = await sessions.end_all_for_account(session, refresh, account_id, now)
    audit.record(
        session,
        event_type=AuditEventType.ACCOUNT_SESSIONS_ENDED,
        outcome="ended",
        now=now,
        actor=actor,
        account_id=account_id,
        request_id=request_id,
        reason=reason,
        browser_sessions_ended=ended.browser,
        app_sessions_ended=ended.app_families,
    )
    return ended


async def set_locked(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    *,
    locked: bool,
    actor: str,
    reason: str,
    now: datetime,
    request_id: str | None,
) -> None:
    """Lock (every session ends in the same transaction) or unlock an account."""
    await accounts.get_account(session, account_id)
    want, was = (
        (AccountStatus.LOCKED, AccountStatus.ACTIVE)
        if locked
        else (AccountStatus.ACTIVE, AccountStatus.LOCKED)
    )
    changed = await session.scalar(
        update(Account)
        .where(Account.id == account_id, Account.status == was)
        .values(status=want, updated_at=now)
        .returning(Account.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        raise AccountStatusUnchanged(f"account {account_id} is not {was}")
    if locked:
        await sessions.end_all_for_account(session, refresh, account_id, now)
    audit.record(
        session,
        event_type=AuditEventType.ACCOUNT_LOCKED if locked else AuditEventType.ACCOUNT_UNLOCKED,
        outcome=want.value,
        now=now,
        actor=actor,
        account_id=account_id,
        request_id=request_id,
        reason=reason,
    )


def reveal_citizen_id(
    session: AsyncSession,
    citizen_id: str,
    *,
    actor: str,
    now: datetime,
    request_id: str | None,
    account_id: int | None = None,
    case_id: int | None = None,
    purpose: str,
) -> str:
    """The full number, for a clerk comparing it with the card in front of them: the trail
    records who saw whose, when and why (never the number itself)."""
    audit.record(
        session,
        event_type=AuditEventType.CITIZEN_ID_REVEALED,
        outcome=purpose,
        now=now,
        actor=actor,
        account_id=account_id,
        request_id=request_id,
        about_citizen_id=citizen_id,
        case_id=case_id,
    )
    return citizen_id
