"""Demo accounts: one for each outcome a VNeID login can have, matching the simulator's citizens."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vssid_broker.accounts.models import (
    Account,
    HealthInsuranceCard,
    InsuranceBenefit,
    InsurancePeriod,
)

DEMO_ACCOUNTS_FILE = Path(__file__).parent / "data" / "demo_accounts.json"


def demo_accounts() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(DEMO_ACCOUNTS_FILE.read_text(encoding="utf-8"))
    return records


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _benefit(record: dict[str, Any]) -> InsuranceBenefit:
    return InsuranceBenefit(
        kind=record["kind"],
        insurance=record["insurance"],
        paid_on=date.fromisoformat(record["paid_on"]),
        period_from=_date(record["period_from"]),
        period_to=_date(record["period_to"]),
        amount_vnd=record["amount_vnd"],
        description=record["description"],
    )


async def _top_up(session: AsyncSession, record: dict[str, Any]) -> None:
    """A demo account seeded before the benefits and the card's QR fields existed gets them."""
    account = await session.scalar(
        select(Account)
        .where(Account.bhxh_code == record["bhxh_code"])
        .options(selectinload(Account.benefits), selectinload(Account.health_card))
    )
    if account is None:
        return
    if not account.benefits:
        account.benefits = [_benefit(benefit) for benefit in record.get("benefits", [])]
    card, recorded = account.health_card, record["health_card"]
    if card is not None and recorded and card.facility_code is None:
        for name, value in _qr_fields(recorded).items():
            setattr(card, name, value)


def _qr_fields(card: dict[str, Any]) -> dict[str, Any]:
    """The card's fields added in revision 0010 (what its QR code carries)."""
    return {
        "facility_code": card.get("facility_code"),
        "issued_on": _date(card.get("issued_on")),
        "managing_office_code": card.get("managing_office_code"),
        "five_years_from": _date(card.get("five_years_from")),
        "living_area": card.get("living_area"),
        "holder_address": card.get("holder_address"),
    }


async def seed_demo(session: AsyncSession) -> int:
    """Insert the demo accounts that are not there yet; returns how many were added."""
    existing = set(await session.scalars(select(Account.bhxh_code)))
    added = 0
    for record in demo_accounts():
        if record["bhxh_code"] in existing:
            await _top_up(session, record)
            continue
        account = Account(
            bhxh_code=record["bhxh_code"],
            citizen_id=record["citizen_id"],
            full_name=record["full_name"],
            birth_date=date.fromisoformat(record["birth_date"]),
            gender=record["gender"],
            phone=record["phone"],
            status=record["status"],
        )
        account.periods = [
            InsurancePeriod(
                kind=period["kind"],
                start_month=date.fromisoformat(period["start_month"]),
                end_month=_date(period["end_month"]),
                employer=period["employer"],
                salary_basis_vnd=period.get("salary_basis_vnd"),
            )
            for period in record["periods"]
        ]
        account.benefits = [_benefit(benefit) for benefit in record.get("benefits", [])]
        card = record["health_card"]
        if card:
            account.health_card = HealthInsuranceCard(
                card_code=card["card_code"],
                benefit_level=card["benefit_level"],
                primary_care_facility=card["primary_care_facility"],
                valid_from=date.fromisoformat(card["valid_from"]),
                valid_to=_date(card["valid_to"]),
                **_qr_fields(card),
            )
        session.add(account)
        added += 1
    return added
