"""Staff reading a person's personal data, and exporting the audit trail: each read leaves its
trace in the trail, in the transaction that read.

One event per person read (`personal_data.read`, its outcome naming what was read), so that the
trail answers "who looked at this person, when, and why" without reading every page's logs.
The admin API and the staff console call the same functions: a read cannot be audited on one
face and forgotten on the other.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import Account
from vssid_broker.admin import people
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.audit.models import AuditEvent
from vssid_broker.linking import review
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.linking.unlinking import account_links
from vssid_broker.sessions.refresh_tokens import RefreshTokens


@dataclass(frozen=True)
class Reader:
    """Who reads, and in which request: `actor` is `staff:<username>`."""

    actor: str
    request_id: str
    now: datetime

    def record(
        self,
        session: AsyncSession,
        what: str,
        account_id: int | None,
        case_id: int | None = None,
        about_citizen_id: str | None = None,
    ) -> None:
        """One audit event per person read."""
        audit.record(
            session,
            event_type=AuditEventType.PERSONAL_DATA_READ,
            outcome=what,
            now=self.now,
            actor=self.actor,
            account_id=account_id,
            request_id=self.request_id,
            about_citizen_id=about_citizen_id,
            case_id=case_id,
        )


async def case_evidence(
    session: AsyncSession, case_id: int, reader: Reader
) -> tuple[ReviewCase, list[review.CandidateEvidence]]:
    """A case with VNeID's claims against each candidate account: a read of every candidate."""
    case = await review.get_case(session, case_id)
    found = await review.evidence(session, case)
    for account_id in case.candidate_account_ids:
        # A read of the candidate's record and of the person whose case it is.
        reader.record(session, "case_evidence", account_id, case.id, case.citizen_id)
    return case, found


async def person(
    session: AsyncSession,
    refresh: RefreshTokens,
    account_id: int,
    reader: Reader,
    *,
    browser_idle_seconds: int,
) -> people.Person:
    """The account with its links, live sessions and review cases."""
    found = await people.person(
        session, refresh, account_id, reader.now, browser_idle_seconds=browser_idle_seconds
    )
    reader.record(session, "account", account_id)
    return found


async def identities(session: AsyncSession, account_id: int, reader: Reader) -> list[FederatedLink]:
    """The VNeID identities linked to an account."""
    links = await account_links(session, account_id)
    reader.record(session, "account_links", account_id)
    return links


async def find_by_citizen_id(
    session: AsyncSession, citizen_id: str, reader: Reader
) -> Account | None:
    """The account carrying a full citizen ID; the search is a read even when nobody is found."""
    found = await accounts.find_by_citizen_id(session, citizen_id)
    reader.record(session, "account_search", found.id if found else None)
    return found


async def case_citizen_id(session: AsyncSession, case_id: int, reader: Reader) -> str:
    """A case's full citizen ID, to compare with the person's card."""
    case = await review.get_case(session, case_id)
    return people.reveal_citizen_id(
        session, case.citizen_id, actor=reader.actor, now=reader.now,
        request_id=reader.request_id, case_id=case.id, purpose="case",
    )  # fmt: skip


async def account_citizen_id(session: AsyncSession, account_id: int, reader: Reader) -> str:
    """An account's full citizen ID (empty if it has none)."""
    account = await accounts.get_account(session, account_id)
    return people.reveal_citizen_id(
        session, account.citizen_id or "", actor=reader.actor, now=reader.now,
        request_id=reader.request_id, account_id=account.id, purpose="account",
    )  # fmt: skip


# --- the audit trail ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditFilters:
    """What a search of the trail keeps; None keeps everything."""

    account_id: int | None = None
    case_id: int | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def search(
    db: async_sessionmaker[AsyncSession], filters: AuditFilters, *, limit: int, offset: int
) -> tuple[list[AuditEvent], int]:
    """The trail, newest first (reading it is an auditor's work, not a read of a person)."""
    async with db() as session:
        return await audit.search(session, **asdict(filters), limit=limit, offset=offset)


EXPORT_MAX = 10_000
"""The most rows one export carries."""


async def export_csv(
    db: async_sessionmaker[AsyncSession], filters: AuditFilters, reader: Reader
) -> str:
    """The filtered trail as CSV (at most `EXPORT_MAX` rows); the export itself is recorded."""
    rows, _ = await search(db, filters, limit=EXPORT_MAX, offset=0)
    async with db.begin() as session:
        audit.record(
            session, event_type=AuditEventType.AUDIT_EXPORTED, outcome="csv", now=reader.now,
            actor=reader.actor, request_id=reader.request_id, rows=len(rows),
        )  # fmt: skip
    return csv_text(rows)


def csv_text(rows: list[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "occurred_at", "event_type", "outcome", "actor", "account_id",
                     "request_id", "details"])  # fmt: skip
    for e in rows:
        details = ";".join(f"{k}={v}" for k, v in sorted(e.details.items()))
        writer.writerow([e.id, e.occurred_at.isoformat(), e.event_type, e.outcome,
                         e.actor, e.account_id or "", e.request_id or "", details])  # fmt: skip
    return out.getvalue()
