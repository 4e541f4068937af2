"""`vssid-broker seed --accounts N`: valid unique identifiers, history, links; all or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.database import empty_data_tables
from vssid_broker import parallel_load
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


# --- the parallel load (PostgreSQL) ---------------------------------------------------------
_TABLES = ("accounts", "insurance_periods", "health_insurance_cards", "federated_links")


async def _schema_of_bulk_tables(engine: AsyncEngine) -> set[tuple[str, ...]]:
    """Every index and unique/foreign-key constraint on the tables the bulk seed writes."""
    async with engine.connect() as connection:
        indexes = await connection.execute(
            text("SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(:t)"),
            {"t": list(_TABLES)},
        )
        constraints = await connection.execute(
            text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE conrelid::regclass::text = ANY(:t)"
            ),
            {"t": list(_TABLES)},
        )
        return {tuple(row) for row in indexes} | {tuple(row) for row in constraints}


async def _bulk_rows(engine: AsyncEngine) -> set[tuple[object, ...]]:
    async with engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT a.bhxh_code, a.citizen_id_index, a.full_name, a.birth_date, a.status,"
                " (SELECT count(*) FROM insurance_periods p WHERE p.account_id = a.id),"
                " (SELECT count(*) FROM health_insurance_cards c WHERE c.account_id = a.id),"
                " (SELECT count(*) FROM federated_links l WHERE l.account_id = a.id)"
                " FROM accounts a"
            )
        )
        return {tuple(row) for row in found}


def _postgresql_only(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the parallel load is PostgreSQL's (COPY from worker processes)")


async def test_a_parallel_bulk_seed_writes_what_one_transaction_writes_and_rebuilds_the_indexes(
    engine: AsyncEngine, demo_only: async_sessionmaker[AsyncSession]
) -> None:
    _postgresql_only(engine)
    schema_before = await _schema_of_bulk_tables(engine)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    serial = await seed_accounts(
        engine, 900, vneid_citizens=150, provider=ISSUER, now=now, chunk_size=100
    )
    rows_serial = await _bulk_rows(engine)
    await empty_data_tables(engine)
    async with demo_only.begin() as session:
        await seed_demo(session)

    parallel = await seed_accounts(
        engine, 900, vneid_citizens=150, provider=ISSUER, now=now, chunk_size=100, workers=2
    )

    assert (parallel.accounts, parallel.periods, parallel.cards, parallel.links) == (
        serial.accounts, serial.periods, serial.cards, serial.links,
    )  # fmt: skip
    assert await _bulk_rows(engine) == rows_serial
    # Every index and constraint is back as it was, and enforced: a second seed is refused.
    assert await _schema_of_bulk_tables(engine) == schema_before
    with pytest.raises(BulkSeedRefused, match="already"):
        await seed_accounts(engine, 50, provider=ISSUER, workers=2)


async def test_a_parallel_bulk_seed_cut_off_mid_way_leaves_nothing_and_the_indexes_back(
    engine: AsyncEngine, demo_only: async_sessionmaker[AsyncSession]
) -> None:
    _postgresql_only(engine)
    schema_before = await _schema_of_bulk_tables(engine)
    rows_before = await _bulk_rows(engine)

    async def cut_a_loading_connection() -> None:
        # A database connection of a loading worker dies (a restart, an administrator).
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            for _ in range(2_000):
                if await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :name AND state <> 'idle'"
                        " AND datname = current_database()"  # not another run's workers
                    ),
                    {"name": parallel_load.APPLICATION_NAME},
                ):
                    return
                await asyncio.sleep(0.005)

    cutter = asyncio.create_task(cut_a_loading_connection())
    # Whichever way the worker hears of it: an error from the server or a closed connection.
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await seed_accounts(engine, 30_000, provider=ISSUER, chunk_size=300, workers=2)
    await asyncio.wait_for(cutter, 5)

    assert await _bulk_rows(engine) == rows_before
    assert await _schema_of_bulk_tables(engine) == schema_before


async def test_a_bulk_seed_killed_with_the_indexes_down_is_repaired_by_the_next(
    engine: AsyncEngine, demo_only: async_sessionmaker[AsyncSession]
) -> None:
    _postgresql_only(engine)
    schema_before = await _schema_of_bulk_tables(engine)
    # What a seed killed between dropping the indexes and rebuilding them leaves behind.
    async with engine.begin() as connection:
        assert await parallel_load.defer_constraints(connection, _TABLES) > 0
    assert await _schema_of_bulk_tables(engine) != schema_before

    await seed_accounts(engine, 40, vneid_citizens=0, provider=ISSUER)

    assert await _schema_of_bulk_tables(engine) == schema_before
