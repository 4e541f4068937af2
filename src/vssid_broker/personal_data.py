"""What the broker holds about one person, gathered for them: the export (`GET
/api/v1/me/export`, the download on the account page) and the account page's privacy section.

Personal-data law gives the person the right to a copy of their data (Decree 13/2023 Art. 9,
Law 91/2025). Everything is here: the account and its history, the VNeID link and the consent
given for it, the review cases opened for their identity, the sessions (live, and ended ones the
purge has not removed yet), and the audit events about the person: those naming their account,
and those naming no account that are tied to them by their citizen ID (`AuditEventPerson`: a
refused login, a review case opened or decided).

The person is known by their citizen IDs: the account's, and the one VNeID verified for each of
their links (normally the same). A review case opened for another citizen ID that merely lists
this account among its candidates is another person's request and is not theirs to read; staff
decide whose it is, and once linked it is theirs.

What is withheld is about other people: staff are named by role only (their names are their own
personal data), a case's other candidate accounts are left out, and so is who a case is
assigned to. The one-time proof ticket's hash is a secret's, not the person's data.
The format is versioned (`EXPORT_FORMAT`) and documented in docs/privacy.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import InsuranceBenefit
from vssid_broker.accounts.schemas import AccountOut, BenefitOut, HealthCardOut, PeriodOut
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent, AuditEventPerson
from vssid_broker.linking import consent
from vssid_broker.linking.models import FederatedLink, LinkConsent, ReviewCase
from vssid_broker.requests import service as agency_requests
from vssid_broker.requests.schemas import RequestOut
from vssid_broker.sealing import installed as citizen_id_keys
from vssid_broker.sessions import service as sessions
from vssid_broker.sessions.refresh_tokens import RefreshTokens

EXPORT_FORMAT = "vssid-broker-personal-data/2"
"""/2 added `review_cases`, the ended sessions (`ended_at`, `ended_because`) and the audit
events tied to the person by citizen ID; docs/privacy.md lists the fields."""


def role_only(actor: str) -> str:
    """`person`, `system`, `proof` as they are; a staff member as `staff`."""
    return "staff" if actor.startswith("staff:") else actor


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
    ended_at: datetime | None
    """None while the session lasts."""
    ended_because: str | None
    """`revoked` (signed out, or ended by the person, staff or VNeID), `expired`, `idle`."""


class ReviewCaseHeld(BaseModel):
    """A review case opened for the person's VNeID identity: what VNeID said, why staff had to
    decide, and what they decided."""

    opened_at: datetime
    provider: str
    subject: str
    citizen_id: str
    full_name: str
    birth_date: date
    """VNeID's claims, as the case keeps them for staff to compare."""
    reason: str
    """Why the rules would not link alone (`ReviewReason`: e.g. `record_mismatch`)."""
    status: str
    """`pending`, `proposed` (one staff member approved, a second must confirm), `approved`,
    `rejected`, `closed` (a duplicate or superseded)."""
    decided_at: datetime | None
    decided_by: str | None
    """`staff`, or `proof` (the person proved the account by its password)."""
    decision_reason: str | None
    """The reason staff gave, identifiers in it masked."""
    linked_to_this_account: bool
    """The decision linked the identity to this account."""
    proven_by_password: bool
    """The person proved, by the account's password, which candidate was theirs."""

    @classmethod
    def of(cls, case: ReviewCase, account_id: int) -> ReviewCaseHeld:
        return cls(
            opened_at=case.created_at,
            provider=case.provider,
            subject=case.subject,
            citizen_id=case.citizen_id,
            full_name=case.full_name,
            birth_date=case.birth_date,
            reason=case.reason,
            status=case.status,
            decided_at=case.decided_at,
            decided_by=role_only(case.decided_by) if case.decided_by else None,
            decision_reason=case.decision_reason,
            linked_to_this_account=(
                case.status == "approved" and case.decided_account_id == account_id
            ),
            proven_by_password=case.proven_account_id == account_id,
        )


WITHHELD_DETAILS = frozenset({"candidate_account_ids", "assigned_to"})
"""Details that name other people: a case's other candidate accounts, the staff member a case
is assigned to."""


class AuditEventHeld(BaseModel):
    occurred_at: datetime
    event_type: str
    outcome: str
    actor: str
    """`person`, `system`, or `staff` (staff are not named)."""
    details: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventHeld:
        return cls(
            occurred_at=event.occurred_at,
            event_type=event.event_type,
            outcome=event.outcome,
            actor=role_only(event.actor),
            details={
                key: value
                for key, value in (event.details or {}).items()
                if key not in WITHHELD_DETAILS
            },
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
    review_cases: list[ReviewCaseHeld]
    sessions: list[SessionHeld]
    """Live and ended ones the purge has not removed yet, newest first."""
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


def citizen_id_indexes(citizen_ids: set[str]) -> list[str]:
    """The blind indexes the person's citizen IDs may be found by: under the current key and,
    during a blind-index key rotation, the previous ones."""
    keys = citizen_id_keys()
    return sorted({index for citizen_id in citizen_ids for index in keys.indexes(citizen_id)})


async def events_about(
    session: AsyncSession, account_id: int, indexes: list[str]
) -> list[AuditEvent]:
    """The audit events naming the account, and those tied to the person by citizen ID."""
    tied = select(AuditEventPerson.event_id).where(AuditEventPerson.citizen_id_index.in_(indexes))
    return list(
        await session.scalars(
            select(AuditEvent)
            .where(or_(AuditEvent.account_id == account_id, AuditEvent.id.in_(tied)))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    )


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
    citizen_ids = {link.citizen_id for link in links}
    if account.citizen_id is not None:
        citizen_ids.add(account.citizen_id)
    indexes = citizen_id_indexes(citizen_ids)
    cases = await session.scalars(
        select(ReviewCase)
        .where(ReviewCase.citizen_id_index.in_(indexes))
        .order_by(ReviewCase.created_at, ReviewCase.id)
    )
    held_sessions = await sessions.sessions_held(
        session, refresh, account_id, now, browser_idle_seconds=browser_idle_seconds
    )
    events = await events_about(session, account_id, indexes)
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
        review_cases=[ReviewCaseHeld.of(case, account_id) for case in cases],
        sessions=[
            SessionHeld(
                channel=view.channel,
                device=view.device,
                created_at=view.created_at,
                last_used_at=view.last_used_at,
                expires_at=view.expires_at,
                ended_at=view.ended_at,
                ended_because=view.ended_because,
            )
            for view in held_sessions
        ],
        requests=requests,
        audit_events=[AuditEventHeld.of(event) for event in events],
    )
