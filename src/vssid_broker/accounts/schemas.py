"""What the API shows of an account and its insurance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Row

from vssid_broker.accounts.models import (
    Account,
    HealthInsuranceCard,
    InsuranceBenefit,
    InsurancePeriod,
)
from vssid_broker.accounts.service import BENEFIT_LABELS, Contributions, KindSummary, Page

ItemT = TypeVar("ItemT", bound=BaseModel)


class AccountOut(BaseModel):
    bhxh_code: str
    citizen_id: str | None
    full_name: str
    birth_date: date
    gender: str
    phone: str | None
    status: str

    @classmethod
    def of(cls, account: Account | Row[Any]) -> AccountOut:
        """From the model or from a row of the `accounts` table (the live-session query's)."""
        return cls._with(account, Account.citizen_id.open_from(account))

    @classmethod
    def _with(cls, account: Account | Row[Any], citizen_id: str | None) -> AccountOut:
        return cls(
            bhxh_code=account.bhxh_code,
            citizen_id=citizen_id,
            full_name=account.full_name,
            birth_date=account.birth_date,
            gender=account.gender,
            phone=account.phone,
            status=account.status,
        )


_CITIZEN_ID_JSON = TypeAdapter(str | None)
"""The citizen ID's JSON as `AccountOut` writes it (the same serializer, escaping and all)."""
_NO_CITIZEN_ID = b'"citizen_id":null'


@dataclass(frozen=True, slots=True)
class AccountJson:
    """`AccountOut`'s JSON for one account's row, rendered without the citizen ID: the bytes
    before and after the ID's value. It holds no ID, so it may be kept beside the row (the
    live-session cache does, for `/api/v1/me`); `with_citizen_id` puts the ID, opened per call,
    in between, and gives the bytes `AccountOut.of(row).model_dump_json()` gives."""

    head: bytes
    tail: bytes

    @classmethod
    def of(cls, account: Account | Row[Any]) -> AccountJson:
        rendered = AccountOut._with(account, None).model_dump_json().encode()
        # The first occurrence is the key's: a string value before it (the BHXH code) cannot
        # hold an unescaped quote.
        head, found, tail = rendered.partition(_NO_CITIZEN_ID)
        if not found:
            raise AssertionError("AccountOut's JSON lost its citizen_id field")
        return cls(head + b'"citizen_id":', tail)

    def with_citizen_id(self, citizen_id: str | None) -> bytes:
        return b"".join((self.head, _CITIZEN_ID_JSON.dump_json(citizen_id), self.tail))


class PeriodOut(BaseModel):
    """One stretch of participation ("quá trình tham gia"): kind, employer, salary basis."""

    kind: str
    start_month: date
    end_month: date | None
    employer: str | None
    salary_basis_vnd: int | None
    """The monthly salary contributions were paid on; None for health insurance alone."""

    @classmethod
    def of(cls, period: InsurancePeriod) -> PeriodOut:
        return cls(
            kind=period.kind,
            start_month=period.start_month,
            end_month=period.end_month,
            employer=period.employer,
            salary_basis_vnd=period.salary_basis_vnd,
        )


class BenefitOut(BaseModel):
    """One payment received ("thụ hưởng")."""

    kind: str
    label: str
    insurance: str
    paid_on: date
    period_from: date | None
    period_to: date | None
    amount_vnd: int
    description: str

    @classmethod
    def of(cls, benefit: InsuranceBenefit) -> BenefitOut:
        return cls(
            kind=benefit.kind,
            label=BENEFIT_LABELS.get(benefit.kind, benefit.kind),  # type: ignore[call-overload]
            insurance=benefit.insurance,
            paid_on=benefit.paid_on,
            period_from=benefit.period_from,
            period_to=benefit.period_to,
            amount_vnd=benefit.amount_vnd,
            description=benefit.description,
        )


class ContributionsOut(BaseModel):
    """Months of social insurance paid, in total and in the latest unbroken run."""

    total_months: int
    continuous_months: int
    continuous_since: date | None

    @classmethod
    def of(cls, contributions: Contributions) -> ContributionsOut:
        return cls(**contributions.__dict__)


class PageOut(BaseModel, Generic[ItemT]):
    """One page of a list that grows over a life (offset paging: the lists are short enough
    per person that a keyset would add nothing)."""

    items: list[ItemT]
    total: int
    offset: int
    limit: int
    next_offset: int | None
    """Pass as `offset` for the next page; None on the last page."""

    @classmethod
    def of(cls, page: Page[Any], convert: Callable[[Any], ItemT]) -> PageOut[ItemT]:
        return cls(
            items=[convert(row) for row in page.items],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
            next_offset=page.next_offset,
        )


class SummaryOut(BaseModel):
    kind: str
    label: str
    months: int
    participating: bool
    since: date | None

    @classmethod
    def of(cls, summary: KindSummary) -> SummaryOut:
        return cls(**summary.__dict__)


class HealthCardOut(BaseModel):
    card_code: str
    benefit_level: int
    primary_care_facility: str
    facility_code: str | None
    valid_from: date
    valid_to: date | None
    five_years_from: date | None
    expired: bool

    @classmethod
    def of(cls, card: HealthInsuranceCard, today: date) -> HealthCardOut:
        return cls(
            card_code=card.card_code,
            benefit_level=card.benefit_level,
            primary_care_facility=card.primary_care_facility,
            facility_code=card.facility_code,
            valid_from=card.valid_from,
            valid_to=card.valid_to,
            five_years_from=card.five_years_from,
            expired=card.valid_to is not None and card.valid_to < today,
        )


class InsuranceOut(BaseModel):
    """The whole history's first pages; `/insurance/periods` and `/insurance/benefits` page on."""

    summary: list[SummaryOut]
    contributions: ContributionsOut
    periods: PageOut[PeriodOut]
    benefits: PageOut[BenefitOut]
    health_card: HealthCardOut | None
