"""Removing a link, by staff or by the person: every session of the account ends with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors import AccountNotFound
from vssid_broker.errors.staff import LinkNotFound
from vssid_broker.linking import consent
from vssid_broker.linking.models import FederatedLink
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.sessions.service import end_all_for_account


async def account_links(session: AsyncSession, account_id: int) -> list[FederatedLink]:
    if await session.get(Account, account_id) is None:
        raise AccountNotFound(f"no account {account_id}")
    return list(
        await session.scalars(
            select(FederatedLink)
            .where(FederatedLink.account_id == account_id)
            .order_by(FederatedLink.id)
        )
    )


@dataclass(frozen=True)
class Unlinked:
    link_id: int
    app_sessions_ended: int
    """Refresh-token families ended: one per signed-in app installation."""
    browser_sessions_ended: int


async def unlink(
    session: AsyncSession,
    *,
    account_id: int,
    link_id: int,
    actor: str,
    reason: str,
    now: datetime,
    request_id: str | None,
    refresh: RefreshTokens,
) -> Unlinked:
    """Remove the link and end every session of the account: whoever signed in through the
    removed identity must not stay signed in. The consent to link ends with it. `actor` is
    a staff member (`staff:<name>`) or the person themself (`person`)."""
    removed = await session.scalar(
        delete(FederatedLink)
        .where(FederatedLink.id == link_id, FederatedLink.account_id == account_id)
        .returning(FederatedLink.provider)
        .execution_options(synchronize_session=False)
    )
    if removed is None:
        raise LinkNotFound(f"account {account_id} has no link {link_id}")
    ended = await end_all_for_account(session, refresh, account_id, now)
    withdrawn = await consent.withdraw(session, account_id=account_id, provider=removed, now=now)
    result = Unlinked(link_id, ended.app_families, ended.browser)
    audit.record(
        session,
        event_type=AuditEventType.LINK_REMOVED,
        outcome="unlinked",
        now=now,
        actor=actor,
        consents_withdrawn=withdrawn,
        account_id=account_id,
        request_id=request_id,
        link_id=link_id,
        provider=removed,
        reason=reason,
        app_sessions_ended=result.app_sessions_ended,
        browser_sessions_ended=result.browser_sessions_ended,
    )
    return result
