"""Staff decisions on review cases, and unlinking: the other half of the linking rules.

A decision is an optimistic compare-and-set on the case's `version`: the UPDATE names the
version the reviewer saw and only a pending case matches, so of two reviewers deciding at the
same moment the database lets exactly one through; the other gets 409. An approval writes the
link in the same transaction, under the same unique constraints as an automatic link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker import metrics
from vssid_broker.accounts.models import Account, AccountStatus
from vssid_broker.audit import service as audit
from vssid_broker.errors import AccountNotFound
from vssid_broker.errors.staff import (
    AccountNotACandidate,
    AlreadyLinked,
    CandidateNotActive,
    CaseNotFound,
    CaseVersionConflict,
    LinkNotFound,
    OwnAccountCase,
)
from vssid_broker.identifiers import mask_citizen_id, normalized_name
from vssid_broker.linking import consent
from vssid_broker.linking.models import FederatedLink, ReviewCase, ReviewReason, ReviewStatus
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.sessions.service import end_all_for_account

WHY = {
    ReviewReason.NAME_BIRTHDATE_MATCH: (
        "Rule 3: no account carries this citizen ID; these accounts have no citizen ID and "
        "match VNeID's name and birth date. A name and a birth date are not proof of identity."
    ),
    ReviewReason.SEVERAL_ACCOUNTS: "Rule 4: more than one account carries this citizen ID.",
    ReviewReason.ACCOUNT_LINKED_ELSEWHERE: (
        "Rule 4: the account carrying this citizen ID is already linked to another VNeID "
        "identity; an account has one VNeID identity at most."
    ),
    ReviewReason.SUBJECT_LINKED_ELSEWHERE: (
        "Rule 4: this VNeID identity is linked to an account, but VNeID now reports another "
        "citizen ID for it."
    ),
    ReviewReason.RECORD_MISMATCH: (
        "Rule 4: the account carries this citizen ID, but its name or birth date differ from "
        "VNeID's verified claims."
    ),
}


@dataclass(frozen=True)
class Decider:
    """Who decides: recorded as `staff:<username>`; `account_id` is their own VssID account."""

    username: str
    account_id: int | None

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


CaseSort = Literal["created_at", "-created_at"]


def case_query(
    *,
    status: ReviewStatus | None,
    reason: ReviewReason | None,
    older_than: datetime | None,
    newer_than: datetime | None,
) -> Select[ReviewCase]:
    query = select(ReviewCase)
    if status is not None:
        query = query.where(ReviewCase.status == status)
    if reason is not None:
        query = query.where(ReviewCase.reason == reason)
    if older_than is not None:
        query = query.where(ReviewCase.created_at <= older_than)
    if newer_than is not None:
        query = query.where(ReviewCase.created_at >= newer_than)
    return query


async def list_cases(
    session: AsyncSession,
    *,
    now: datetime,
    status: ReviewStatus | None = None,
    reason: ReviewReason | None = None,
    min_age_hours: int | None = None,
    max_age_hours: int | None = None,
    sort: CaseSort = "created_at",
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[ReviewCase], int]:
    query = case_query(
        status=status,
        reason=reason,
        older_than=now - timedelta(hours=min_age_hours) if min_age_hours is not None else None,
        newer_than=now - timedelta(hours=max_age_hours) if max_age_hours is not None else None,
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    order = ReviewCase.created_at.desc() if sort == "-created_at" else ReviewCase.created_at
    rows = await session.scalars(query.order_by(order, ReviewCase.id).limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def get_case(session: AsyncSession, case_id: int) -> ReviewCase:
    case = await session.get(ReviewCase, case_id)
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    return case


@dataclass(frozen=True)
class CandidateEvidence:
    account: Account
    linked_subject: str | None
    citizen_id: Literal["same", "missing", "different"]
    full_name_matches: bool
    birth_date_matches: bool


async def evidence(session: AsyncSession, case: ReviewCase) -> list[CandidateEvidence]:
    accounts = {
        a.id: a
        for a in await session.scalars(
            select(Account).where(Account.id.in_(case.candidate_account_ids))
        )
    }
    links = {
        link.account_id: link.subject
        for link in await session.scalars(
            select(FederatedLink).where(FederatedLink.account_id.in_(case.candidate_account_ids))
        )
    }
    found = []
    for account_id in case.candidate_account_ids:
        account = accounts.get(account_id)
        if account is None:
            continue  # account deleted since the case was opened
        found.append(
            CandidateEvidence(
                account=account,
                linked_subject=links.get(account.id),
                citizen_id="missing"
                if account.citizen_id is None
                else "same"
                if account.citizen_id == case.citizen_id
                else "different",
                full_name_matches=normalized_name(account.full_name)
                == normalized_name(case.full_name),
                birth_date_matches=account.birth_date == case.birth_date,
            )
        )
    return found


def _check_decider(case: ReviewCase, decider: Decider) -> None:
    # Separation of duties: nobody decides who may sign in to their own account.
    if decider.account_id is not None and decider.account_id in case.candidate_account_ids:
        raise OwnAccountCase(f"case {case.id} names the decider's own account")


async def _decide(
    session: AsyncSession,
    case: ReviewCase,
    *,
    version: int,
    status: ReviewStatus,
    account_id: int | None,
    decider: Decider,
    reason: str | None,
    now: datetime,
) -> None:
    decided = await session.scalar(
        update(ReviewCase)
        .where(
            ReviewCase.id == case.id,
            ReviewCase.version == version,
            ReviewCase.status == ReviewStatus.PENDING,
        )
        .values(
            status=status,
            version=ReviewCase.version + 1,
            decided_account_id=account_id,
            decided_by=decider.actor,
            decided_at=now,
            decision_reason=reason,
        )
        .returning(ReviewCase.id)
        .execution_options(synchronize_session=False)
    )
    if decided is None:
        raise CaseVersionConflict(f"case {case.id} is not pending at version {version}")
    metrics.REVIEW_CASES_DECIDED.labels(status).inc()


async def approve(
    session: AsyncSession,
    case_id: int,
    *,
    version: int,
    account_id: int,
    decider: Decider,
    reason: str | None,
    now: datetime,
    request_id: str | None,
    consent_terms: consent.Terms,
) -> ReviewCase:
    """Link the case's identity to the chosen candidate. Raises (and writes nothing) if the
    case moved on, the account is no candidate, not active, or either side is linked."""
    case = await get_case(session, case_id)
    _check_decider(case, decider)
    if account_id not in case.candidate_account_ids:
        raise AccountNotACandidate(f"account {account_id} is not a candidate of case {case.id}")
    account = await session.get_one(Account, account_id)
    if account.status != AccountStatus.ACTIVE:
        raise CandidateNotActive(f"account {account_id} is {account.status}")
    await _decide(
        session,
        case,
        version=version,
        status=ReviewStatus.APPROVED,
        account_id=account_id,
        decider=decider,
        reason=reason,
        now=now,
    )
    try:
        # A savepoint, so the failure leaves the transaction usable for the caller's rollback.
        async with session.begin_nested():
            session.add(
                FederatedLink(
                    account_id=account_id,
                    provider=case.provider,
                    subject=case.subject,
                    citizen_id=case.citizen_id,
                    method="staff_review",
                    linked_by=decider.actor,
                    linked_at=now,
                )
            )
    except IntegrityError as error:
        # uq_federated_links_identity / account_id unique: one link each way, always.
        raise AlreadyLinked(f"case {case.id}: account or identity already linked") from error
    audit.record(
        session,
        event_type="review_case.decided",
        outcome="approved",
        now=now,
        actor=decider.actor,
        account_id=account_id,
        request_id=request_id,
        case_id=case.id,
        reason=reason,
    )
    audit.record(
        session,
        event_type="link.created",
        outcome="staff_review",
        now=now,
        actor=decider.actor,
        account_id=account_id,
        request_id=request_id,
        case_id=case.id,
        citizen_id=mask_citizen_id(case.citizen_id),
        provider=case.provider,
    )
    consent.record(
        session,
        account_id=account_id,
        provider=case.provider,
        terms=consent_terms,
        now=now,
        request_id=request_id,
    )
    await session.refresh(case)
    return case


async def reject(
    session: AsyncSession,
    case_id: int,
    *,
    version: int,
    decider: Decider,
    reason: str,
    now: datetime,
    request_id: str | None,
) -> ReviewCase:
    case = await get_case(session, case_id)
    _check_decider(case, decider)
    await _decide(
        session,
        case,
        version=version,
        status=ReviewStatus.REJECTED,
        account_id=None,
        decider=decider,
        reason=reason,
        now=now,
    )
    audit.record(
        session,
        event_type="review_case.decided",
        outcome="rejected",
        now=now,
        actor=decider.actor,
        request_id=request_id,
        case_id=case.id,
        reason=reason,
    )
    await session.refresh(case)
    return case


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
        event_type="link.removed",
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


async def pending_queue(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many cases wait for staff, and when the oldest of them was opened."""
    row = (
        await session.execute(
            select(func.count(), func.min(ReviewCase.created_at)).where(
                ReviewCase.status == ReviewStatus.PENDING
            )
        )
    ).one()
    oldest = row[1]
    if isinstance(oldest, str):  # SQLite returns min() of a DateTime column as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(row[0]), oldest
