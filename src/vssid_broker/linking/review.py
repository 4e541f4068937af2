"""The review queue and one case's evidence: what staff read before they decide.

Cases are opened by the linking rules (`linking.service`); staff decide them in
`linking.decisions`; a link is removed in `linking.unlinking`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account
from vssid_broker.errors.staff import CaseNotFound
from vssid_broker.identifiers import normalized_name
from vssid_broker.linking.models import (
    OPEN_STATUSES,
    FederatedLink,
    ReviewCase,
    ReviewReason,
    ReviewStatus,
)
from vssid_broker.sealing import blind_index

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


async def open_case_for(
    session: AsyncSession, *, citizen_id: str | None = None, account_id: int | None = None
) -> ReviewCase | None:
    """The oldest open case of a person the clerk searched for: the one opened for their
    citizen ID (through its blind index), or else one that names their account among its
    candidates. Open cases are few (the queue), so their candidate lists are read here."""
    open_cases = (
        select(ReviewCase)
        .where(ReviewCase.status.in_(OPEN_STATUSES))
        .order_by(ReviewCase.created_at, ReviewCase.id)
    )
    if citizen_id is not None:
        found = await session.scalar(
            open_cases.where(ReviewCase.citizen_id_index == blind_index(citizen_id)).limit(1)
        )
        if found is not None:
            return found
    if account_id is None:
        return None
    for case in await session.scalars(open_cases):
        if account_id in case.candidate_account_ids:
            return case
    return None


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
