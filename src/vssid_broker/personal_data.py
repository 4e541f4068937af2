"""What the broker holds about one person, gathered for them: the export (`GET
/api/v1/me/export`, the download on the account page) and the account page's privacy section.

Personal-data law gives the person the right to a copy of their data (Decree 13/2023 Art. 9,
Law 91/2025). Everything is here: the account and its history, the VNeID link and the consent
given for it, the signed-in sessions, and the audit events about the person. Staff who acted
are named by role only (their names are their own personal data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import InsuranceBenefit
from vssid_broker.accounts.schemas import AccountOut, BenefitOut, HealthCardOut, PeriodOut
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking import consent
from vssid_broker.linking.models import FederatedLink, LinkConsent
from vssid_broker.requests import service as agency_requests
from vssid_broker.requests.schemas import RequestOut
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.refresh_tokens import RefreshTokens

EXPORT_FORMAT = "vssid-broker-personal-data/1"


class LinkHeld(BaseModel):
    provider: str
    subject: str
    """VNeID's identifier of the person at this broker."""
    method: str
    linked_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, link: FederatedLink) -> LinkHeld:
        return cls(
            provider=link.provider,
            subject=link.subject,
            method=link.method,
            linked_at=link.linked_at,
            last_login_at=link.last_login_at,
        )


class ConsentHeld(BaseModel):
    provider: str
    claims: list[str]
    """Names of the claims VNeID shared."""
    purpose: str
    notice_version: str
    given_at: datetime
    withdrawn_at: datetime | None

    @classmethod
    def of(cls, row: LinkConsent) -> ConsentHeld:
        return cls(
            provider=row.provider,
            claims=list(row.claims),
            purpose=row.purpose,
            notice_version=row.notice_version,
            given_at=row.given_at,
            withdrawn_at=row.withdrawn_at,
        )


class SessionHeld(BaseModel):
    channel: str
    device: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


class AuditEventHeld(BaseModel):
    occurred_at: datetime
    event_type: str
    outcome: str
    actor: str
    """`person`, `system`, or `staff` (staff are not named)."""
    details: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventHeld:
        actor = "staff" if event.actor.startswith("staff:") else event.actor
        return cls(
            occurred_at=event.occurred_at,
            event_type=event.event_type,
            outcome=event.outcome,
            actor=actor,
            details=event.details or {},
        )


class PersonalDataExport(BaseModel):
    format: str = EXPORT_FORMAT
    exported_at: datetime
    account: AccountOut
    insurance_periods: list[PeriodOut]
    benefits: list[BenefitOut]
    health_card: HealthCardOut | None
    links: list[LinkHeld]
    consents: list[ConsentHeld]
    sessions: list[SessionHeld]
    requests: list[RequestOut]
    """The person's requests to the agency, each with its history."""
    audit_events: list[AuditEventHeld]


async def links_and_consents(
    session: AsyncSession, account_id: int
) -> tuple[list[FederatedLink], list[LinkConsent]]:
    """The account page's privacy section: what is linked, since when, under which consent."""
    links = list(
        await session.scalars(
            select(FederatedLink)
            .where(FederatedLink.account_id == account_id)
            .order_by(FederatedLink.id)
        )
    )
    return links, await consent.of_account(session, account_id)


async def export(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    *,
    now: datetime,
    browser_idle_seconds: int,
    request_id: str | None,
) -> PersonalDataExport:
    """Everything held about the account's person; the export itself is audited (written
    into `session`, which the caller commits)."""
    account = await accounts.get_account(session, account_id)
    benefits = await session.scalars(
        select(InsuranceBenefit)
        .where(InsuranceBenefit.account_id == account_id)
        .order_by(InsuranceBenefit.paid_on.desc())
    )
    links, consents = await links_and_consents(session, account_id)
    live = await sessions.list_sessions(
        session, refresh, account_id, now, browser_idle_seconds=browser_idle_seconds
    )
    events = list(
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_id == account_id)
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    )
    requests = [
        RequestOut.of(row, await agency_requests.history(session, row.id))
        for row in await agency_requests.list_own(session, account_id)
    ]
    audit.record(
        session,
        event_type=AuditEventType.PERSONAL_DATA_EXPORTED,
        outcome="exported",
        now=now,
        actor="person",
        account_id=account_id,
        request_id=request_id,
    )
    return PersonalDataExport(
        exported_at=now,
        account=AccountOut.of(account),
        insurance_periods=[PeriodOut.of(p) for p in account.periods],
        benefits=[BenefitOut.of(row) for row in benefits],
        health_card=(
            HealthCardOut.of(account.health_card, now.date()) if account.health_card else None
        ),
        links=[LinkHeld.of(link) for link in links],
        consents=[ConsentHeld.of(row) for row in consents],
        sessions=[
            SessionHeld(
                channel=view.channel,
                device=view.device,
                created_at=view.created_at,
                last_used_at=view.last_used_at,
                expires_at=view.expires_at,
            )
            for view in live
        ],
        requests=requests,
        audit_events=[AuditEventHeld.of(event) for event in events],
    )
