"""Demo data and bulk seed: the accounts and review cases the demo shows, and synthetic
accounts by the million for benchmarks. With `cli`, the only broker code that knows the
simulated VNeID (its citizens are the people these accounts belong to)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.seeding.demo_accounts import seed_demo
from vssid_broker.seeding.demo_cases import seed_demo_cases


@dataclass(frozen=True)
class DemoSeeded:
    accounts: int
    cases: int


DEMO_ISSUER_PREFIX = "http://127.0.0.1:"
"""The demo's simulated VNeID always runs on loopback; only its port changes."""


async def move_demo_issuer(session: AsyncSession, issuer: str) -> int:
    """The simulated VNeID's issuer is its URL, so a demo restarted with another `--sim-port`
    sees the same citizens (same subjects) under a new issuer. Links and review cases made
    under an earlier demo port move to this one, else every linked citizen would look like a
    new VNeID identity for an already linked account: a review case. Returns the rows moved.
    Never used outside the demo: a real issuer does not change."""
    if not issuer.startswith(DEMO_ISSUER_PREFIX):
        return 0
    moved = 0
    for table in (FederatedLink, ReviewCase):
        taken = select(table.subject).where(table.provider == issuer)
        result = await session.execute(
            update(table)
            .where(
                table.provider != issuer,
                table.provider.startswith(DEMO_ISSUER_PREFIX),
                table.subject.not_in(taken),
            )
            .values(provider=issuer)
            .execution_options(synchronize_session=False)
        )
        moved += result.rowcount or 0  # type: ignore[attr-defined]
    return moved


async def seed_demo_data(session: AsyncSession, *, issuer: str, now: datetime) -> DemoSeeded:
    """The demo accounts and review cases, each inserted once (a second run adds nothing)."""
    accounts = await seed_demo(session)
    cases = await seed_demo_cases(session, issuer=issuer, now=now)
    return DemoSeeded(accounts, cases)
