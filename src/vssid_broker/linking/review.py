"""Staff decisions on review cases, and unlinking: the other half of the linking rules.

A decision is an optimistic compare-and-set on the case's `version`: the UPDATE names the
version the reviewer saw and the state it must be in, so of two staff acting at the same
moment the database lets exactly one through; the other gets 409. An approval writes the
link in the same transaction, under the same unique constraints as an automatic link.

Four eyes (`review_four_eyes`): a reviewer's approval only proposes the link (`proposed`); a
different staff member with the approver role confirms it (the link is made then) or returns
it to the queue. Nobody decides or confirms a case about their own account, found by the
account they are bound to and by the case's citizen ID. A case claimed by (or assigned to)
one staff member is decided by them only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker import metrics
from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import Account, AccountStatus
from vssid_broker.audit import service as audit
from vssid_broker.errors import AccountNotFound
from vssid_broker.errors.staff import (
    AccountNotACandidate,
    AlreadyLinked,
    CandidateNotActive,
    CaseAssignedElsewhere,
    CaseNotFound,
    CaseVersionConflict,
    LinkNotFound,
    OwnAccountCase,
    OwnDecision,
)
from vssid_broker.identifiers import mask_citizen_id, normalized_name
from vssid_broker.linking import consent
from vssid_broker.linking.models import (
    OPEN_STATUSES,
    FederatedLink,
    ReviewCase,
    ReviewReason,
    ReviewStatus,
)
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.sessions.service import end_all_for_account

WHY = {
    ReviewReason.NAME_BIRTHDATE_MATCH: (
        "Quy tắc 3: không tài khoản nào mang số định danh này; các tài khoản dưới đây chưa có "
        "số định danh và trùng họ tên, ngày sinh với VNeID. Họ tên và ngày sinh không đủ để "
        "chứng minh danh tính."
    ),
    ReviewReason.SEVERAL_ACCOUNTS: "Quy tắc 4: có nhiều tài khoản mang cùng số định danh này.",
    ReviewReason.ACCOUNT_LINKED_ELSEWHERE: (
        "Quy tắc 4: tài khoản mang số định danh này đã liên kết với một danh tính VNeID khác; "
        "mỗi tài khoản chỉ liên kết với một danh tính VNeID."
    ),
    ReviewReason.SUBJECT_LINKED_ELSEWHERE: (
        "Quy tắc 4: danh tính VNeID này đã liên kết với một tài khoản, nhưng nay VNeID báo một "
        "số định danh khác."
    ),
    ReviewReason.RECORD_MISMATCH: (
        "Quy tắc 4: tài khoản mang số định danh này, nhưng họ tên hoặc ngày sinh khác với thông "
        "tin VNeID đã xác thực."
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
    assigned_to: str | None = None,
) -> Select[ReviewCase]:
    query = select(ReviewCase)
    if assigned_to == "":
        query = query.where(ReviewCase.assigned_to.is_(None))
    elif assigned_to is not None:
        query = query.where(ReviewCase.assigned_to == assigned_to)
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
    assigned_to: str | None = None,
) -> tuple[list[ReviewCase], int]:
    """`assigned_to`: a staff username, or "" for cases nobody has claimed."""
    query = case_query(
        status=status,
        reason=reason,
        assigned_to=assigned_to,
        older_than=now - timedelta(hours=min_age_hours) if min_age_hours is not None else None,
        newer_than=now - timedelta(hours=max_age_hours) if max_age_hours is not None else None,
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    order = ReviewCase.created_at.desc() if sort == "-created_at" else ReviewCase.created_at
    rows = await session.scalars(query.order_by(order, ReviewCase.id).limit(limit).offset(offset))
    return list(rows), int(total or 0)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(ReviewCase.status, func.count()).group_by(ReviewCase.status)
    )
    counts = {status.value: 0 for status in ReviewStatus}
    counts.update({status: int(n) for status, n in rows.all()})
    return counts


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


async def _check_decider(session: AsyncSession, case: ReviewCase, decider: Decider) -> None:
    """Separation of duties: nobody decides who may sign in to their own account, whether
    their account is a candidate or the case is about their own citizen ID."""
    if decider.account_id is None:
        return
    if decider.account_id in case.candidate_account_ids:
        raise OwnAccountCase(f"case {case.id} names the decider's own account")
    carrier = await accounts.find_by_citizen_id(session, case.citizen_id)
    if carrier is not None and carrier.id == decider.account_id:
        raise OwnAccountCase(f"case {case.id} is about the decider's own citizen ID")


def _check_assignment(case: ReviewCase, decider: Decider) -> None:
    if case.assigned_to not in (None, decider.username):
        raise CaseAssignedElsewhere(f"case {case.id} is assigned to another staff member")


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
            ReviewCase.assigned_to.is_(None) | (ReviewCase.assigned_to == decider.username),
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
    four_eyes: bool,
) -> ReviewCase:
    """Approve the chosen candidate: under four eyes a proposal for an approver to confirm,
    otherwise the link itself. Raises (and writes nothing) if the case moved on, is someone
    else's, the account is no candidate, not active, or either side is linked."""
    case = await get_case(session, case_id)
    await _check_decider(session, case, decider)
    _check_assignment(case, decider)
    await _check_candidate(session, case, account_id)
    if four_eyes:
        await _check_linkable(session, case, account_id)
    await _decide(
        session,
        case,
        version=version,
        status=ReviewStatus.PROPOSED if four_eyes else ReviewStatus.APPROVED,
        account_id=account_id,
        decider=decider,
        reason=reason,
        now=now,
    )
    audit.record(
        session,
        event_type="review_case.decided",
        outcome="proposed" if four_eyes else "approved",
        now=now,
        actor=decider.actor,
        account_id=account_id,
        request_id=request_id,
        case_id=case.id,
        reason=reason,
    )
    if not four_eyes:
        await _link(session, case, account_id, decider, now, request_id, consent_terms)
    await session.refresh(case)
    return case


async def _check_linkable(session: AsyncSession, case: ReviewCase, account_id: int) -> None:
    """A proposal that could never be confirmed is refused now; the confirmation still relies
    on the unique constraints, not on this read."""
    taken = await session.scalar(
        select(FederatedLink.id).where(
            (FederatedLink.account_id == account_id)
            | ((FederatedLink.provider == case.provider) & (FederatedLink.subject == case.subject))
        )
    )
    if taken is not None:
        raise AlreadyLinked(f"case {case.id}: account or identity already linked")


async def _check_candidate(session: AsyncSession, case: ReviewCase, account_id: int) -> None:
    if account_id not in case.candidate_account_ids:
        raise AccountNotACandidate(f"account {account_id} is not a candidate of case {case.id}")
    account = await session.get_one(Account, account_id)
    if account.status != AccountStatus.ACTIVE:
        raise CandidateNotActive(f"account {account_id} is {account.status}")


async def _link(
    session: AsyncSession,
    case: ReviewCase,
    account_id: int,
    decider: Decider,
    now: datetime,
    request_id: str | None,
    consent_terms: consent.Terms,
) -> None:
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


async def _settle_proposal(
    session: AsyncSession,
    case_id: int,
    *,
    version: int,
    confirmer: Decider,
    confirm: bool,
    reason: str | None,
    now: datetime,
) -> ReviewCase:
    case = await get_case(session, case_id)
    if case.status != ReviewStatus.PROPOSED or case.version != version:
        raise CaseVersionConflict(f"case {case.id} is not proposed at version {version}")
    if case.decided_by == confirmer.actor:
        raise OwnDecision(f"case {case.id}: the same staff member cannot confirm")
    await _check_decider(session, case, confirmer)
    values: dict[str, object] = (
        {"status": ReviewStatus.APPROVED, "confirmed_by": confirmer.actor, "confirmed_at": now}
        if confirm
        else {
            "status": ReviewStatus.PENDING,
            "decided_account_id": None,
            "decided_by": None,
            "decided_at": None,
            "decision_reason": reason,
        }
    )
    settled = await session.scalar(
        update(ReviewCase)
        .where(
            ReviewCase.id == case.id,
            ReviewCase.version == version,
            ReviewCase.status == ReviewStatus.PROPOSED,
        )
        .values(version=ReviewCase.version + 1, **values)
        .returning(ReviewCase.id)
        .execution_options(synchronize_session=False)
    )
    if settled is None:
        raise CaseVersionConflict(f"case {case.id} is not proposed at version {version}")
    return case


async def confirm(
    session: AsyncSession,
    case_id: int,
    *,
    version: int,
    confirmer: Decider,
    reason: str | None,
    now: datetime,
    request_id: str | None,
    consent_terms: consent.Terms,
) -> ReviewCase:
    """Four eyes: a different approver confirms the proposed candidate; the link is made now."""
    case = await _settle_proposal(
        session, case_id, version=version, confirmer=confirmer, confirm=True, reason=reason,
        now=now,
    )  # fmt: skip
    account_id = case.decided_account_id
    assert account_id is not None
    await _check_candidate(session, case, account_id)
    audit.record(
        session,
        event_type="review_case.decided",
        outcome="approved",
        now=now,
        actor=confirmer.actor,
        account_id=account_id,
        request_id=request_id,
        case_id=case.id,
        proposed_by=case.decided_by,
        reason=reason,
    )
    await _link(session, case, account_id, confirmer, now, request_id, consent_terms)
    await session.refresh(case)
    return case


async def return_to_queue(
    session: AsyncSession,
    case_id: int,
    *,
    version: int,
    confirmer: Decider,
    reason: str,
    now: datetime,
    request_id: str | None,
) -> ReviewCase:
    """Four eyes: the approver does not confirm; the case waits for a new decision."""
    case = await _settle_proposal(
        session, case_id, version=version, confirmer=confirmer, confirm=False, reason=reason,
        now=now,
    )  # fmt: skip
    audit.record(
        session,
        event_type="review_case.decided",
        outcome="returned",
        now=now,
        actor=confirmer.actor,
        request_id=request_id,
        case_id=case.id,
        proposed_by=case.decided_by,
        reason=reason,
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
    status: ReviewStatus = ReviewStatus.REJECTED,
) -> ReviewCase:
    """Refuse the link (the person is told at their next login), or with `status=CLOSED`
    close a duplicate or superseded case without a decision on the person."""
    case = await get_case(session, case_id)
    await _check_decider(session, case, decider)
    _check_assignment(case, decider)
    await _decide(
        session,
        case,
        version=version,
        status=status,
        account_id=None,
        decider=decider,
        reason=reason,
        now=now,
    )
    audit.record(
        session,
        event_type="review_case.decided",
        outcome=status.value,
        now=now,
        actor=decider.actor,
        request_id=request_id,
        case_id=case.id,
        reason=reason,
    )
    await session.refresh(case)
    return case


async def assign(
    session: AsyncSession,
    case_id: int,
    *,
    to: str | None,
    actor: Decider,
    may_reassign: bool,
    now: datetime,
    request_id: str | None,
) -> ReviewCase:
    """Claim (`to` = the actor), release (`to` = None) or, for those who `may_reassign`, give
    an open case to someone. Only an unclaimed case or one's own changes hands otherwise; the
    UPDATE says so, so two reviewers claiming at once end with one owner."""
    case = await get_case(session, case_id)
    condition: ColumnElement[bool] = ReviewCase.status.in_(OPEN_STATUSES)
    if not may_reassign:
        condition = condition & (
            ReviewCase.assigned_to.is_(None) | (ReviewCase.assigned_to == actor.username)
        )
    changed = await session.scalar(
        update(ReviewCase)
        .where(ReviewCase.id == case.id, condition)
        .values(assigned_to=to, assigned_at=now if to else None)
        .returning(ReviewCase.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        if case.status not in OPEN_STATUSES:
            raise CaseVersionConflict(f"case {case.id} is {case.status}")
        raise CaseAssignedElsewhere(f"case {case.id} is assigned to {case.assigned_to}")
    audit.record(
        session,
        event_type="review_case.assigned",
        outcome="claimed" if to == actor.username else "assigned" if to else "released",
        now=now,
        actor=actor.actor,
        request_id=request_id,
        case_id=case.id,
        assigned_to=to,
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
