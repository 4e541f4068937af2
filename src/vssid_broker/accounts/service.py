"""Reading VssID accounts and summarising their insurance history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vssid_broker.accounts.models import Account, InsuranceKind, InsurancePeriod
from vssid_broker.errors import AccountNotFound
from vssid_broker.identifiers import BHXH_CODE, CITIZEN_ID, normalized_name

KIND_LABELS = {
    InsuranceKind.BHXH: "Bảo hiểm xã hội",
    InsuranceKind.BHYT: "Bảo hiểm y tế",
    InsuranceKind.BHTN: "Bảo hiểm thất nghiệp",
}


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
        .options(selectinload(Account.periods), selectinload(Account.health_card))
    )
    if account is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    return account


async def find_by_citizen_id(session: AsyncSession, citizen_id: str) -> Account | None:
    """The account carrying this citizen ID. The one place staff code looks a citizen ID up,
    so the way citizen IDs are stored can change here alone."""
    return await session.scalar(select(Account).where(Account.citizen_id == citizen_id))


SEARCH_LIMIT = 20


async def search(session: AsyncSession, query: str) -> list[Account]:
    """Staff search: a 12-digit citizen ID or a 10-digit BHXH code finds that account; anything
    else is a full name, compared as the linking rules compare names (case and spacing aside;
    diacritics count)."""
    query = query.strip()
    if CITIZEN_ID.match(query):
        found = await find_by_citizen_id(session, query)
        return [found] if found else []
    if BHXH_CODE.match(query):
        found = await session.scalar(select(Account).where(Account.bhxh_code == query))
        return [found] if found else []
    if len(query) < 2:
        return []
    return list(
        await session.scalars(
            select(Account)
            .where(Account.name_key == normalized_name(query))
            .order_by(Account.birth_date, Account.id)
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
