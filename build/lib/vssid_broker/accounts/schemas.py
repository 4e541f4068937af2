"""What the API shows of an account and its insurance."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from vssid_broker.accounts.models import Account, HealthInsuranceCard, InsurancePeriod
from vssid_broker.accounts.service import KindSummary


class AccountOut(BaseModel):
    bhxh_code: str
    citizen_id: str | None
    full_name: str
    birth_date: date
    gender: str
    phone: str | None
    status: str

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            bhxh_code=account.bhxh_code,
            citizen_id=account.citizen_id,
            full_name=account.full_name,
            birth_date=account.birth_date,
            gender=account.gender,
            phone=account.phone,
            status=account.status,
        )


class PeriodOut(BaseModel):
    kind: str
    start_month: date
    end_month: date | None
    employer: str | None

    @classmethod
    def of(cls, period: InsurancePeriod) -> PeriodOut:
        return cls(
            kind=period.kind,
            start_month=period.start_month,
            end_month=period.end_month,
            employer=period.employer,
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
    valid_from: date
    valid_to: date | None

    @classmethod
    def of(cls, card: HealthInsuranceCard) -> HealthCardOut:
        return cls(
            card_code=card.card_code,
            benefit_level=card.benefit_level,
            primary_care_facility=card.primary_care_facility,
            valid_from=card.valid_from,
            valid_to=card.valid_to,
        )


class InsuranceOut(BaseModel):
    summary: list[SummaryOut]
    periods: list[PeriodOut]
    health_card: HealthCardOut | None
