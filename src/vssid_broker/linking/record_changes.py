"""When the agency's records change under a link: the import of accounts
(`admin.account_import`) calls this for a linked account whose citizen ID it changes.

The link was made for the citizen ID VNeID verified; an account now recorded with another one
may belong to someone else. Keeping the link would let that VNeID identity keep signing in to
it, so the link is suspended — removed, with every session of the account (`unlinking`) — and a
review case opened with what VNeID verified, for staff to decide whose account it is. An
approval links the identity again (`linking.decisions`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.federation.claims import VerifiedIdentity
from vssid_broker.linking.models import FederatedLink, ReviewReason
from vssid_broker.linking.service import NeedsReview, _open_case
from vssid_broker.linking.unlinking import unlink
from vssid_broker.sessions.refresh_tokens import RefreshTokens


async def suspend_for_review(
    session: AsyncSession,
    refresh: RefreshTokens,
    *,
    link: FederatedLink,
    account: Account,
    actor: str,
    reason: str,
    now: datetime,
) -> bool:
    """Suspend `link` and open its review case; True when a case was opened (or one was open
    for the identity already), False when staff rejected the same question before."""
    identity = VerifiedIdentity(
        issuer=link.provider,
        subject=link.subject,
        citizen_id=link.citizen_id,
        full_name=account.full_name,
        birth_date=account.birth_date,
        gender=account.gender,
        acr="",
        amr=(),
    )
    await unlink(
        session,
        account_id=account.id,
        link_id=link.id,
        actor=actor,
        reason=reason,
        now=now,
        request_id=None,
        refresh=refresh,
    )
    outcome = await _open_case(
        session, identity, ReviewReason.CITIZEN_ID_CHANGED, [account], now, None
    )
    return isinstance(outcome, NeedsReview)
