"""Demo data and bulk seed: the accounts and review cases the demo shows, and synthetic
accounts by the million for benchmarks. With `cli`, the only broker code that knows the
simulated VNeID (its citizens are the people these accounts belong to)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.seeding.demo_accounts import seed_demo
from vssid_broker.seeding.demo_cases import seed_demo_cases


@dataclass(frozen=True)
class DemoSeeded:
    accounts: int
    cases: int


async def seed_demo_data(session: AsyncSession, *, issuer: str, now: datetime) -> DemoSeeded:
    """The demo accounts and review cases, each inserted once (a second run adds nothing)."""
    accounts = await seed_demo(session)
    cases = await seed_demo_cases(session, issuer=issuer, now=now)
    return DemoSeeded(accounts, cases)
