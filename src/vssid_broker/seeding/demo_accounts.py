"""Demo accounts: one for each outcome a VNeID login can have, matching the simulator's citizens."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.models import Account, HealthInsuranceCard, InsurancePeriod

DEMO_ACCOUNTS_FILE = Path(__file__).parent / "data" / "demo_accounts.json"


def demo_accounts() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(DEMO_ACCOUNTS_FILE.read_text(encoding="utf-8"))
    return records


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


async def seed_demo(session: AsyncSession) -> int:
    """Insert the demo accounts that are not there yet; returns how many were added."""
    existing = set(await session.scalars(select(Account.bhxh_code)))
    added = 0
    for record in demo_accounts():
        if record["bhxh_code"] in existing:
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
            )
            for period in record["periods"]
        ]
        card = record["health_card"]
        if card:
            account.health_card = HealthInsuranceCard(
                card_code=card["card_code"],
                benefit_level=card["benefit_level"],
                primary_care_facility=card["primary_care_facility"],
                valid_from=date.fromisoformat(card["valid_from"]),
                valid_to=_date(card["valid_to"]),
            )
        session.add(account)
        added += 1
    return added
