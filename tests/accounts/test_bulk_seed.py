"""`vssid-broker seed --accounts N`: valid unique identifiers, history, links; all or nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.database import empty_data_tables
from vssid_broker.accounts.models import Account, HealthInsuranceCard, InsurancePeriod
from vssid_broker.linking.models import FederatedLink
from vssid_broker.seeding.bulk import BulkSeedRefused, seed_accounts
from vssid_broker.seeding.demo_accounts import demo_accounts, seed_demo
from vssid_broker.vneid_sim.citizens import generate_citizens, validate_citizen_id

ISSUER = "http://127.0.0.1:9000"


@pytest.fixture
async def demo_only(
    engine: AsyncEngine, db: async_sessionmaker[AsyncSession]
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await empty_data_tables(engine)
    async with db.begin() as session:
        await seed_demo(session)
    yield db
    await empty_data_tables(engine)


async def test_bulk_accounts_have_valid_unique_identifiers_next_to_the_demo_accounts(
    engine: AsyncEngine, demo_only: async_sessionmaker[AsyncSession]
) -> None:
    report = await seed_accounts(engine, 700, vneid_citizens=200, provider=ISSUER)

    assert report.accounts == 700
    async with demo_only() as session:
        accounts = list(await session.scalars(select(Account)))
    demo_codes = {record["bhxh_code"] for record in demo_accounts()}
    assert len(accounts) == 700 + len(demo_codes)
    bulk = [account for account in accounts if account.bhxh_code not in demo_codes]
    assert len(bulk) == 700
    for account in bulk:
        assert account.citizen_id is not None
        validate_citizen_id(account.citizen_id, account.birth_date, account.gender)
        assert len(account.bhxh_code) == 10 and account.bhxh_code.isdigit()
    # The first accounts are exactly the simulator's generated citizens, so they can log in.
    by_citizen = {account.citizen_id: account for account in bulk}
    for citizen in generate_citizens(200):
        account = by_citizen[citizen.citizen_id]
        assert (account.full_name, account.birth_date) == (citizen.full_name, citizen.birthdate)
    filler_serials = {a.citizen_id[6] for a in bulk if a.citizen_id} - {"9"}
    assert filler_serials and "0" not in filler_serials


async def test_bulk_accounts_carry_history_cards_and_some_links(
    engine: AsyncEngine, demo_only: async_sessionmaker[AsyncSession]
) -> None:
    report = await seed_accounts(engine, 500, vneid_citizens=0, provider=ISSUER)

    async with demo_only() as session:
        periods = await session.scalar(select(func.count()).select_from(InsurancePeriod))
        cards = await session.scalar(select(func.count()).select_from(HealthInsuranceCard))
        links = list(await session.scalars(select(FederatedLink)))
    assert report.periods >= 500 and periods is not None and periods >= 500
    demo_cards = sum(1 for record in demo_accounts() if record["health_card"])
    assert report.cards and cards == report.cards + demo_cards
    assert len(links) == report.links and 50 < len(links) < 300
    assert {link.provider for link in links} == {ISSUER}


async def test_a_second_bulk_seed_is_refused_and_writes_nothing(
    engine: AsyncEngine, demo_only: async_sessionmaker[AsyncSession]
) -> None:
    await seed_accounts(engine, 50, vneid_citizens=10, provider=ISSUER)
    async with demo_only() as session:
        before = await session.scalar(select(func.count()).select_from(Account))

    with pytest.raises(BulkSeedRefused, match="already"):
        await seed_accounts(engine, 50, vneid_citizens=10, provider=ISSUER)
    with pytest.raises(BulkSeedRefused, match="between"):
        await seed_accounts(engine, 0, provider=ISSUER)

    async with demo_only() as session:
        assert await session.scalar(select(func.count()).select_from(Account)) == before
