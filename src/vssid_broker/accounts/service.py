"""Reading VssID accounts and summarising their insurance history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, joinedload, selectinload

from vssid_broker.accounts.models import (
    Account,
    BenefitKind,
    InsuranceBenefit,
    InsuranceKind,
    InsurancePeriod,
)
from vssid_broker.errors import AccountNotFound
from vssid_broker.identifiers import BHXH_CODE, CITIZEN_ID, searchable_name
from vssid_broker.sealing import has_blind_index

KIND_LABELS = {
    InsuranceKind.BHXH: "Bảo hiểm xã hội",
    InsuranceKind.BHYT: "Bảo hiểm y tế",
    InsuranceKind.BHTN: "Bảo hiểm thất nghiệp",
}


BENEFIT_LABELS = {
    BenefitKind.SICKNESS: "Ốm đau",
    BenefitKind.MATERNITY: "Thai sản",
    BenefitKind.HEALTH_RECOVERY: "Dưỡng sức, phục hồi sức khoẻ",
    BenefitKind.OCCUPATIONAL: "Tai nạn lao động, bệnh nghề nghiệp",
    BenefitKind.PENSION: "Lương hưu",
    BenefitKind.UNEMPLOYMENT: "Trợ cấp thất nghiệp",
    BenefitKind.MEDICAL: "Khám chữa bệnh BHYT",
}

MAX_PAGE_SIZE = 100
RowT = TypeVar("RowT", InsurancePeriod, InsuranceBenefit)


@dataclass(frozen=True)
class KindSummary:
    kind: str
    label: str
    months: int
    participating: bool
    since: date | None


async def get_account(session: AsyncSession, account_id: int) -> Account:
    account = await session.scalar(
        select(Account)
        .where(Account.id == account_id)
        # The card (one per account, unique) joins the account's own row: one statement fewer.
        .options(selectinload(Account.periods), joinedload(Account.health_card))
    )
    if account is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    return account


SEARCH_LIMIT = 20


async def search(session: AsyncSession, query: str) -> list[Account]:
    """Staff search: a 12-digit citizen ID or a 10-digit BHXH code finds that account; anything
    else is the start of a full name, typed as a clerk types it: diacritics, case and spacing
    aside ("pham thi dung" finds Phạm Thị Dung, "pham thi" her and her namesakes)."""
    query = query.strip()
    if CITIZEN_ID.match(query):
        found = await find_by_citizen_id(session, query)
        return [found] if found else []
    if BHXH_CODE.match(query):
        found = await session.scalar(select(Account).where(Account.bhxh_code == query))
        return [found] if found else []
    prefix = searchable_name(query)
    if len(prefix) < 2:
        return []
    # Keys hold only a-z, 0-9 and spaces, all below "~": [prefix, prefix + "~") is exactly
    # the keys that start with it, a range of the index in byte order.
    return list(
        await session.scalars(
            select(Account)
            .where(Account.search_key >= prefix, Account.search_key < prefix + "~")
            .order_by(Account.search_key, Account.birth_date, Account.id)
            .limit(SEARCH_LIMIT)
        )
    )


def months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end`, both month-granular and inclusive."""
    return (end.year - start.year) * 12 + end.month - start.month + 1


def summarise(periods: list[InsurancePeriod], today: date) -> list[KindSummary]:
    summaries = []
    for kind in InsuranceKind:
        own = [period for period in periods if period.kind == kind]
        months = sum(months_between(p.start_month, p.end_month or today) for p in own)
        open_periods = [p for p in own if p.end_month is None or p.end_month >= today]
        summaries.append(
            KindSummary(
                kind=kind.value,
                label=KIND_LABELS[kind],
                months=months,
                participating=bool(open_periods),
                since=min((p.start_month for p in open_periods), default=None),
            )
        )
    return summaries


async def find_by_citizen_id(session: AsyncSession, citizen_id: str) -> Account | None:
    """The account carrying a citizen ID, through its blind index (never a scan)."""
    return await session.scalar(
        select(Account).where(has_blind_index(Account.citizen_id_index, citizen_id))
    )


@dataclass(frozen=True)
class Contributions:
    """Months of social insurance (BHXH) paid: in total, and in the latest unbroken run, as the
    app shows them ("tổng thời gian đóng" and "thời gian đóng liên tục")."""

    total_months: int
    continuous_months: int
    continuous_since: date | None


def contributions(periods: list[InsurancePeriod], today: date) -> Contributions:
    """Each month counts once even when two employers paid for it (two jobs at once)."""
    months: set[int] = set()
    for period in periods:
        if period.kind != InsuranceKind.BHXH:
            continue
        first = _month_index(period.start_month)
        last = _month_index(min(period.end_month or today, today))
        months.update(range(first, last + 1))
    if not months:
        return Contributions(0, 0, None)
    run_end = run_start = max(months)
    while run_start - 1 in months:
        run_start -= 1
    return Contributions(
        total_months=len(months),
        continuous_months=run_end - run_start + 1,
        continuous_since=date(run_start // 12, run_start % 12 + 1, 1),
    )


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


@dataclass(frozen=True)
class Page(Generic[RowT]):
    items: list[RowT]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.items)
        return following if following < self.total else None


async def periods_page(
    session: AsyncSession, account_id: int, *, offset: int, limit: int
) -> Page[InsurancePeriod]:
    """Participation periods, newest first: a working life has dozens, a page at a time."""
    return await _page(
        session, InsurancePeriod, account_id, InsurancePeriod.start_month, offset, limit
    )


def periods_page_of(account: Account, *, offset: int, limit: int) -> Page[InsurancePeriod]:
    """`periods_page` answered from the periods `get_account` loaded already (all of them, for
    the summary): the same page in the same order, without counting and reading them again."""
    limit, offset = _bounds(offset, limit)
    newest_first = sorted(account.periods, key=lambda p: (p.start_month, p.id), reverse=True)
    return Page(newest_first[offset : offset + limit], len(newest_first), offset, limit)


async def benefits_page(
    session: AsyncSession, account_id: int, *, offset: int, limit: int
) -> Page[InsuranceBenefit]:
    """Benefits received, newest first: a pensioner's grow by one a month."""
    return await _page(
        session, InsuranceBenefit, account_id, InsuranceBenefit.paid_on, offset, limit
    )


async def _page(
    session: AsyncSession,
    model: type[RowT],
    account_id: int,
    newest_first_by: InstrumentedAttribute[date],
    offset: int,
    limit: int,
) -> Page[RowT]:
    # Both tables are indexed by (account_id, date): the count and the page read the index.
    limit, offset = _bounds(offset, limit)
    owner = model.account_id == account_id
    total = await session.scalar(select(func.count()).select_from(model).where(owner))
    items = await session.scalars(
        select(model)
        .where(owner)
        .order_by(newest_first_by.desc(), model.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return Page(list(items), int(total or 0), offset, limit)


def _bounds(offset: int, limit: int) -> tuple[int, int]:
    """(limit, offset) as a page allows them."""
    return max(1, min(limit, MAX_PAGE_SIZE)), max(0, offset)
