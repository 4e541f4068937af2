"""Staff decisions on review cases: the other half of the linking rules.

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
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker import metrics
from vssid_broker.accounts import service as accounts
from vssid_broker.accounts.models import Account, AccountStatus
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors.staff import (
    AccountNotACandidate,
    AlreadyLinked,
    CandidateNotActive,
    CaseAssignedElsewhere,
    CaseVersionConflict,
    OwnAccountCase,
    OwnDecision,
)
from vssid_broker.identifiers import mask_citizen_id
from vssid_broker.linking import consent
from vssid_broker.linking.models import OPEN_STATUSES, FederatedLink, ReviewCase, ReviewStatus
from vssid_broker.linking.review import get_case


@dataclass(frozen=True)
class Decider:
    """Who decides: recorded as `staff:<username>`; `account_id` is their own VssID account."""

    username: str
    account_id: int | None

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


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
    return await _decided(
        session, case, "proposed" if four_eyes else "approved", decider, now=now,
        request_id=request_id, account_id=account_id,
        link_with=None if four_eyes else consent_terms, reason=reason,
    )  # fmt: skip


async def _decided(
    session: AsyncSession,
    case: ReviewCase,
    outcome: str,
    decider: Decider,
    *,
    now: datetime,
    request_id: str | None,
    account_id: int | None = None,
    link_with: consent.Terms | None = None,
    **details: Any,
) -> ReviewCase:
    """The tail of every decision: the audit event, the link when one is made now (under
    `link_with`, the consent terms), and the case as the database now holds it."""
    audit.record(
        session,
        event_type=AuditEventType.REVIEW_CASE_DECIDED,
        outcome=outcome,
        now=now,
        actor=decider.actor,
        account_id=account_id,
        request_id=request_id,
        about_citizen_id=case.citizen_id,
        case_id=case.id,
        **details,
    )
    if link_with is not None:
        assert account_id is not None
        await _link(session, case, account_id, decider, now, request_id, link_with)
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
        event_type=AuditEventType.LINK_CREATED,
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
    return await _decided(
        session, case, "approved", confirmer, now=now, request_id=request_id,
        account_id=account_id, link_with=consent_terms, proposed_by=case.decided_by,
        reason=reason,
    )  # fmt: skip


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
    return await _decided(
        session, case, "returned", confirmer, now=now, request_id=request_id,
        proposed_by=case.decided_by, reason=reason,
    )  # fmt: skip


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
    return await _decided(
        session, case, status.value, decider, now=now, request_id=request_id, reason=reason
    )


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
        event_type=AuditEventType.REVIEW_CASE_ASSIGNED,
        outcome="claimed" if to == actor.username else "assigned" if to else "released",
        now=now,
        actor=actor.actor,
        request_id=request_id,
        about_citizen_id=case.citizen_id,
        case_id=case.id,
        assigned_to=to,
    )
    await session.refresh(case)
    return case
