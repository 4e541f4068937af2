"""Resolving a verified VNeID identity to a VssID account: one explicit outcome, never a guess.

First cut of the rules: an identity already linked signs in to its account; otherwise exactly
one active account carrying the same government-verified citizen ID is linked to it; no
account means "you need a VssID account first"; anything else is refused for now and will
become a review case for staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account, AccountStatus
from vssid_broker.audit import service as audit
from vssid_broker.federation.claims import VerifiedIdentity
from vssid_broker.linking.models import FederatedLink


@dataclass(frozen=True)
class Linked:
    """The identity was linked before; sign in."""

    account: Account


@dataclass(frozen=True)
class AutoLinked:
    """Linked now, by an exact citizen-ID match; tell the person."""

    account: Account


@dataclass(frozen=True)
class NoAccount:
    """No VssID account carries this citizen ID."""


@dataclass(frozen=True)
class Refused:
    reason: str
    """Stable code: `account_locked`, `account_closed`, `account_linked_elsewhere`, ..."""


LinkOutcome = Linked | AutoLinked | NoAccount | Refused


async def resolve(
    session: AsyncSession, identity: VerifiedIdentity, *, now: datetime, request_id: str | None
) -> LinkOutcome:
    """Decide, and for an automatic link write it and its audit event (uncommitted)."""
    link = await session.scalar(
        select(FederatedLink).where(
            FederatedLink.provider == identity.issuer, FederatedLink.subject == identity.subject
        )
    )
    if link is not None:
        account = await session.get_one(Account, link.account_id)
        if account.status != AccountStatus.ACTIVE:
            return Refused(f"account_{account.status}")
        if link.citizen_id != identity.citizen_id:
            # VNeID changed the person behind a subject: never follow that silently.
            return Refused("citizen_id_changed")
        link.last_login_at = now
        return Linked(account)

    candidate = await session.scalar(
        select(Account).where(Account.citizen_id == identity.citizen_id)
    )
    if candidate is None:
        return NoAccount()
    account = candidate
    if account.status != AccountStatus.ACTIVE:
        return Refused(f"account_{account.status}")
    if await session.scalar(select(FederatedLink.id).where(FederatedLink.account_id == account.id)):
        return Refused("account_linked_elsewhere")

    try:
        async with session.begin_nested():
            session.add(
                FederatedLink(
                    account_id=account.id,
                    provider=identity.issuer,
                    subject=identity.subject,
                    citizen_id=identity.citizen_id,
                    method="citizen_id_match",
                    linked_by="system",
                    linked_at=now,
                    last_login_at=now,
                )
            )
    except IntegrityError:
        # A concurrent first login of the same person won the race: use its link if it is ours.
        winner = await session.scalar(
            select(FederatedLink).where(
                FederatedLink.provider == identity.issuer,
                FederatedLink.subject == identity.subject,
                FederatedLink.account_id == account.id,
            )
        )
        return Linked(account) if winner is not None else Refused("account_linked_elsewhere")
    audit.record(
        session,
        event_type="link.created",
        outcome="auto_linked",
        now=now,
        account_id=account.id,
        request_id=request_id,
        method="citizen_id_match",
        citizen_id=identity.masked_citizen_id,
        provider=identity.issuer,
    )
    return AutoLinked(account)
