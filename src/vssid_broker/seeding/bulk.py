"""Synthetic VssID accounts in bulk, for load and scale tests: `vssid-broker seed --accounts N`.

Every account has a structurally valid 12-digit citizen ID (a real province code, the
century/gender digit and year digits agreeing with the birth date and gender, six serial digits)
and a unique 10-digit BHXH code, plus insurance periods, and for some a health-insurance card and
a link to a VNeID identity.

The first `vneid_citizens` accounts belong to exactly the citizens the simulated VNeID makes with
``generated_citizens`` (`generate_citizens(n, seed)`), so a load test can sign them in through
the simulator. The others are filler with serials 100000-899999, which neither the simulator's
generated citizens (serials starting with 9) nor the demo accounts (serials starting with 0) use.

On PostgreSQL the rows go in with COPY (asyncpg's binary copy), from several processes at once
when asked (`workers`; see `parallel_load`), elsewhere with batched INSERTs in one transaction;
either way a failure leaves nothing behind.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import column, func, insert, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from vssid_broker import parallel_load, sealing
from vssid_broker.accounts.models import (
    ACCOUNT_CITIZEN_ID,
    Account,
    HealthInsuranceCard,
    InsurancePeriod,
)
from vssid_broker.errors import CommandRefused
from vssid_broker.identifiers import normalized_name, searchable_name
from vssid_broker.linking.models import LINK_CITIZEN_ID, FederatedLink
from vssid_broker.vneid_sim.citizens import PROVINCE_CODES, century_gender_digit, generate_citizens

# Filler IDs put (province, serial) in one-to-one correspondence with the account index, so they
# are unique by construction: 63 provinces x 800,000 serials.
_PROVINCES = sorted(PROVINCE_CODES)
_FILLER_SERIALS = 800_000
MAX_ACCOUNTS = len(_PROVINCES) * _FILLER_SERIALS
# BHXH codes: two province digits and eight digits from a permutation of 20,000,000-89,999,999;
# the demo accounts' eight digits start with 1 or 9, so they never meet.
_BHXH_SPAN, _BHXH_BASE, _BHXH_STEP = 70_000_000, 20_000_000, 7_368_787
_SERIAL_STEP = 7_919
assert math.gcd(_BHXH_STEP, _BHXH_SPAN) == 1 and math.gcd(_SERIAL_STEP, _FILLER_SERIALS) == 1

CHUNK = 20_000

_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô"]
_MIDDLE = {"male": ["Văn", "Minh", "Đức", "Quốc"], "female": ["Thị", "Ngọc", "Thu", "Thanh"]}
_GIVEN = {
    "male": ["An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Long", "Nam", "Sơn", "Tuấn"],
    "female": ["Anh", "Chi", "Dung", "Hà", "Hương", "Lan", "Linh", "Mai", "Thảo", "Yến"],
}
_EMPLOYERS = [
    "Công ty TNHH Dệt may Thành Công",
    "Công ty CP Xây dựng Số 1",
    "Ngân hàng TMCP Ngoại thương Việt Nam",
    "Trường THPT Nguyễn Du",
    "Công ty TNHH Điện tử Sao Mai",
    "Bệnh viện Đa khoa tỉnh",
]
_PHONE_PREFIXES = ["032", "035", "038", "056", "070", "077", "081", "086", "090", "091", "098"]
_EARLIEST_BIRTH, _BIRTH_SPAN_DAYS = date(1950, 1, 1), (date(2011, 12, 31) - date(1950, 1, 1)).days


class BulkSeedRefused(CommandRefused):
    """The bulk seed would exceed its bounds or overwrite accounts already there."""


@dataclass
class BulkSeedReport:
    accounts: int = 0
    periods: int = 0
    cards: int = 0
    links: int = 0
    seconds: float = 0.0


@dataclass
class _Rows:
    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    periods: list[tuple[Any, ...]] = field(default_factory=list)
    cards: list[tuple[Any, ...]] = field(default_factory=list)
    links: list[tuple[Any, ...]] = field(default_factory=list)

    def counts(self) -> tuple[int, int, int, int]:
        return len(self.accounts), len(self.periods), len(self.cards), len(self.links)


ACCOUNT_COLUMNS = (
    "id", "bhxh_code", "citizen_id_sealed", "citizen_id_index", "full_name", "name_key",
    "search_key", "birth_date", "gender", "phone", "status", "created_at", "updated_at",
)  # fmt: skip
PERIOD_COLUMNS = ("account_id", "kind", "start_month", "end_month", "employer", "salary_basis_vnd")
CARD_COLUMNS = (
    "account_id", "card_code", "benefit_level", "primary_care_facility", "valid_from", "valid_to",
)  # fmt: skip
LINK_COLUMNS = (
    "account_id", "provider", "subject", "citizen_id_sealed", "method", "linked_by", "linked_at",
    "last_login_at",
)  # fmt: skip


def bhxh_code(index: int, place: str) -> str:
    return f"{place[1:]}{_BHXH_BASE + (index * _BHXH_STEP) % _BHXH_SPAN:08d}"


def filler_citizen_id(index: int, born: date, gender: str) -> str:
    place = _PROVINCES[index % len(_PROVINCES)]
    serial = 100_000 + (index // len(_PROVINCES) * _SERIAL_STEP) % _FILLER_SERIALS
    digit = century_gender_digit(born, "female" if gender == "female" else "male")
    return f"{place}{digit}{born.year % 100:02d}{serial:06d}"


def _month(day: date) -> date:
    return day.replace(day=1)


@dataclass(frozen=True)
class _Plan:
    """What every chunk of one bulk seed shares; the same plan always gives the same rows,
    whichever process writes which chunk."""

    count: int
    vneid_citizens: int
    seed: int
    first_id: int
    now: datetime
    provider: str
    link_share: float
    chunk_size: int = CHUNK

    def chunks(self) -> range:
        return range(math.ceil(self.count / self.chunk_size))


# Per process: the simulator's citizens for the plan last asked (a worker writes many chunks).
_citizens_for: dict[tuple[int, int], list[Any]] = {}


def _citizens(plan: _Plan) -> list[Any]:
    key = (min(plan.vneid_citizens, plan.count), plan.seed)
    if key not in _citizens_for:
        _citizens_for.clear()
        _citizens_for[key] = generate_citizens(*key)
    return _citizens_for[key]


def _chunk_rows(plan: _Plan, chunk: int) -> _Rows:
    """Rows for the accounts of one chunk. Each chunk has its own random stream, so chunks can
    be made in any order and in parallel."""
    rng = random.Random(f"{plan.seed}/{chunk}")  # noqa: S311 - reproducible test data, not secrets
    # Written below the ORM (COPY, executemany), so sealed here, each value bound to its row as
    # the ORM binds it: the stored rows are the same, and sealing costs a few microseconds per
    # value (docs/performance.md). A linked account's link holds a value of its own.
    keys = sealing.installed()
    citizens = _citizens(plan)
    today = plan.now.date()
    now, provider = plan.now, plan.provider
    rows = _Rows()
    size = plan.chunk_size
    for index in range(chunk * size, min((chunk + 1) * size, plan.count)):
        account_id = plan.first_id + index
        if index < len(citizens):
            citizen = citizens[index]
            citizen_id, born, gender = citizen.citizen_id, citizen.birthdate, citizen.gender
            name, phone, status = citizen.full_name, citizen.phone, "active"
            # Their first login through the simulator makes the link (the common first-time path).
            linked = False
        else:
            gender = "male" if rng.random() < 0.5 else "female"
            born = _EARLIEST_BIRTH + timedelta(days=rng.randrange(_BIRTH_SPAN_DAYS + 1))
            citizen_id = filler_citizen_id(index, born, gender)
            name = (
                f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE[gender])} {rng.choice(_GIVEN[gender])}"
            )
            phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10_000_000):07d}"
            roll = rng.random()
            status = "active" if roll < 0.98 else ("locked" if roll < 0.995 else "closed")
            linked = rng.random() < plan.link_share
        place = citizen_id[:3]
        code = bhxh_code(index, place)
        key = normalized_name(name)
        sealed = keys.seal(citizen_id, ACCOUNT_CITIZEN_ID.of(code))
        rows.accounts.append(
            (
                account_id, code, sealed, keys.index(citizen_id), name, key,
                searchable_name(name), born, gender, phone,
                status, now, now,
            )
        )  # fmt: skip
        adult_from = date(born.year + 18, born.month, 1)
        if adult_from < today:
            # Work history: one or two jobs with social and unemployment insurance.
            start = _month(adult_from + timedelta(days=rng.randrange(2000)))
            start = min(start, _month(today))
            switch = start + timedelta(days=rng.randrange(200, 6000))
            employer = rng.choice(_EMPLOYERS)
            salary = rng.randrange(4_000, 40_000) * 1_000
            if switch < today:
                rows.periods.append((account_id, "BHXH", start, _month(switch), employer, salary))
                start = min(_month(switch + timedelta(days=31)), _month(today))
                employer = rng.choice(_EMPLOYERS)
            rows.periods.append((account_id, "BHXH", start, None, employer, salary))
            rows.periods.append((account_id, "BHTN", start, None, employer, salary))
        rows.periods.append(
            (account_id, "BHYT", _month(max(born, date(2009, 7, 1))), None, None, None)
        )
        if rng.random() < 0.6:
            valid_from = date(today.year, 1, 1)
            rows.cards.append(
                (
                    account_id,
                    f"DN4{place[1:]}{code}",
                    rng.randint(1, 5),
                    f"Trung tâm Y tế {PROVINCE_CODES[place]}",
                    valid_from,
                    date(today.year, 12, 31),
                )
            )
        if linked and status == "active":
            subject = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            rows.links.append(
                (
                    account_id,
                    provider,
                    subject,
                    keys.seal(citizen_id, LINK_CITIZEN_ID.of(account_id)),
                    "citizen_id_match",
                    "system",
                    now,
                    None,
                )
            )
    return rows


async def seed_accounts(
    engine: AsyncEngine,
    count: int,
    *,
    vneid_citizens: int = 10_000,
    seed: int = 0,
    provider: str = "http://127.0.0.1:9000",
    link_share: float = 0.3,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    chunk_size: int = CHUNK,
) -> BulkSeedReport:
    """Insert `count` synthetic accounts and return what was written; `progress` hears how many
    accounts each written chunk added. All or nothing: a failure leaves no bulk account behind.

    With `workers` > 1 on PostgreSQL, that many processes make and COPY the chunks in parallel,
    with the four tables' secondary indexes and constraints dropped during the load and built
    once at the end (see `parallel_load`): for a database nothing else uses meanwhile (a
    benchmark's), since lookups and uniqueness wait for the rebuild. Otherwise one transaction
    writes everything."""
    if not 0 < count <= MAX_ACCOUNTS:
        raise BulkSeedRefused(f"--accounts must be between 1 and {MAX_ACCOUNTS:,}")
    started = time.perf_counter()
    report = BulkSeedReport()

    def written(counts: tuple[int, ...]) -> None:
        accounts, periods, cards, links = counts
        report.accounts += accounts
        report.periods += periods
        report.cards += cards
        report.links += links
        if progress is not None:
            progress(accounts)

    async with engine.begin() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            await parallel_load.restore_deferred(connection)  # after a seed that was killed
            # No other writer may take account ids from under the range reserved below.
            await connection.execute(text("LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE"))
        plan = _Plan(
            count=count,
            vneid_citizens=vneid_citizens,
            seed=seed,
            first_id=await _first_free_id(connection),
            now=now or datetime.now(UTC),
            provider=provider,
            link_share=link_share,
            chunk_size=chunk_size,
        )
        if not (postgres and workers > 1):
            for chunk in plan.chunks():
                rows = _chunk_rows(plan, chunk)
                await _write(connection, rows, postgres)
                written(rows.counts())
            if postgres:
                await _reserve_ids(connection, plan)
        else:
            await _reserve_ids(connection, plan)
            await parallel_load.defer_constraints(connection, BULK_TABLES)
    if postgres and workers > 1:
        await parallel_load.run(
            engine,
            jobs=[(plan, chunk) for chunk in plan.chunks()],
            write_chunk=_write_chunk_in_worker,
            workers=workers,
            written=written,
            undo=_undo_statements(plan),
            # The workers seal with this process's keys (they are spawned, not forked).
            worker_setup=sealing.install,
            worker_setup_args=(sealing.installed(),),
        )
    if postgres:
        async with engine.connect() as connection:
            # Fresh statistics, so the planner sees millions of rows and picks the indexes.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE " + ", ".join(BULK_TABLES)))
    report.seconds = time.perf_counter() - started
    return report


BULK_TABLES = ("accounts", "insurance_periods", "health_insurance_cards", "federated_links")


async def _first_free_id(connection: AsyncConnection) -> int:
    """The first account id of the bulk range; refused if bulk accounts are there already."""
    # Index 0 always gets the same eight digits; its province prefix varies, so ask for all.
    already = await connection.scalar(
        select(func.count())
        .select_from(Account)
        .where(Account.bhxh_code.in_([bhxh_code(0, place) for place in _PROVINCES]))
    )
    if already:
        raise BulkSeedRefused(
            "bulk accounts are already in this database; seed an emptied database"
        )
    return (await connection.scalar(select(func.max(Account.id))) or 0) + 1


async def _reserve_ids(connection: AsyncConnection, plan: _Plan) -> None:
    """Move the account id sequence past the bulk range, so later accounts never collide."""
    await connection.execute(
        text("SELECT setval(pg_get_serial_sequence('accounts', 'id'), :last)"),
        {"last": plan.first_id + plan.count - 1},
    )


def _undo_statements(plan: _Plan) -> list[tuple[str, dict[str, int]]]:
    """What removes every row of this bulk range (children first: their keys are dropped)."""
    where = {"first": plan.first_id, "last": plan.first_id + plan.count - 1}
    return (
        [
            (f"DELETE FROM {table} WHERE account_id BETWEEN :first AND :last", where)  # noqa: S608
            for table in BULK_TABLES[1:]
        ]
        + [("DELETE FROM accounts WHERE id BETWEEN :first AND :last", where)]
    )


async def _write_chunk_in_worker(connection: Any, plan: _Plan, chunk: int) -> tuple[int, ...]:
    """One chunk, in a worker process, on its own asyncpg connection and transaction."""
    rows = _chunk_rows(plan, chunk)
    async with connection.transaction():
        for table, columns, records in _batches(rows):
            if records:
                await connection.copy_records_to_table(table, records=records, columns=columns)
    return rows.counts()


def _batches(rows: _Rows) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    return [
        (Account.__tablename__, ACCOUNT_COLUMNS, rows.accounts),
        (InsurancePeriod.__tablename__, PERIOD_COLUMNS, rows.periods),
        (HealthInsuranceCard.__tablename__, CARD_COLUMNS, rows.cards),
        (FederatedLink.__tablename__, LINK_COLUMNS, rows.links),
    ]


async def _write(connection: AsyncConnection, rows: _Rows, postgres: bool) -> None:
    if postgres:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for name, columns, records in _batches(rows):
            if records:
                await driver.copy_records_to_table(name, records=records, columns=columns)
        return
    for name, columns, records in _batches(rows):
        if records:
            # Untyped columns: the values are already sealed (see `_chunk_rows`), and the
            # sealed column's own type would seal them again.
            await connection.execute(
                insert(sql_table(name, *(column(c) for c in columns))),
                [dict(zip(columns, record, strict=True)) for record in records],
            )
