"""Merging an import's staged rows into `accounts`, keyed by the BHXH code, batch by batch.

The SQL here is the same on PostgreSQL and SQLite (both have UPDATE ... FROM) but for the
null-safe comparison, and it is built from names in this module, never from input.

A batch is a range of the file's lines. In the caller's transaction it:

1. rejects what only the whole file and the database can show: a BHXH code or citizen ID
   repeated from an earlier line, a citizen ID another account holds (never moved silently);
2. tells the caller which accounts the change means something for (`BatchConsequences`): those
   the file locks or closes, and linked ones whose citizen ID changes — before the accounts
   change, so the caller sees what they were;
3. updates the accounts whose row differs and inserts the new ones.

Running a batch again changes nothing: an equal row is neither updated nor inserted. A citizen
ID is compared by its blind index, never re-sealed when equal (sealing is randomised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import column, delete, insert, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncSession

from vssid_broker.accounts.importing import (
    STAGED_COLUMNS,
    AccountRow,
    ImportFileError,
    Layout,
    RejectedRow,
    Slice,
    read_slice,
)
from vssid_broker.accounts.models import StagedAccountRow
from vssid_broker.identifiers import mask_bhxh_code

STAGING = StagedAccountRow.__tablename__
REPEATED_BHXH_CODE = "bhxh_code.repeated_in_file"
REPEATED_CITIZEN_ID = "citizen_id.repeated_in_file"
HELD_BY_ANOTHER = "citizen_id.held_by_another_account"
MERGE_REASONS = (REPEATED_BHXH_CODE, REPEATED_CITIZEN_ID, HELD_BY_ANOTHER)
"""The reasons a row is rejected at the merge rather than when it is read."""

_BATCH = "s.run_id = :run AND s.line >= :first AND s.line < :end"
_REJECT = (
    f"UPDATE {STAGING} SET rejected = :reason WHERE run_id = :run AND line >= :first "  # noqa: S608
    "AND line < :end AND rejected IS NULL AND {condition}"
)
_REPEATED = (
    # Every line after the first of its key, in one pass over the run's rows (a sort), once
    # the whole file is staged: a per-row lookup would want an index on random keys.
    f"UPDATE {STAGING} SET rejected = :reason FROM (SELECT line FROM (SELECT line, "  # noqa: S608
    "row_number() OVER (PARTITION BY {key} ORDER BY line) AS nth "
    f"FROM {STAGING} WHERE run_id = :run AND {{key}} IS NOT NULL) numbered WHERE nth > 1) later "
    f"WHERE {STAGING}.run_id = :run AND {STAGING}.line = later.line AND {STAGING}.rejected IS NULL"
)
_HELD = (
    f"{STAGING}.citizen_id_index IS NOT NULL AND EXISTS (SELECT 1 FROM accounts a "  # noqa: S608
    f"WHERE a.citizen_id_index = {STAGING}.citizen_id_index "
    f"AND a.bhxh_code <> {STAGING}.bhxh_code)"
)
_ENDING = (
    "SELECT a.id FROM {staging} s JOIN accounts a ON a.bhxh_code = s.bhxh_code "
    "WHERE {batch} AND s.rejected IS NULL AND s.status <> 'active' AND a.status <> s.status "
    "ORDER BY s.line"
)
_RELINKING = (
    "SELECT a.id AS account_id, l.id AS link_id, s.citizen_id_sealed FROM {staging} s "
    "JOIN accounts a ON a.bhxh_code = s.bhxh_code JOIN federated_links l ON l.account_id = a.id "
    "WHERE {batch} AND s.rejected IS NULL AND a.citizen_id_index {distinct} s.citizen_id_index "
    "ORDER BY s.line"
)
_UPDATE = (
    "UPDATE accounts SET "
    "citizen_id_sealed = CASE WHEN accounts.citizen_id_index {distinct} s.citizen_id_index "
    "THEN s.citizen_id_sealed ELSE accounts.citizen_id_sealed END, "
    "citizen_id_index = s.citizen_id_index, full_name = s.full_name, name_key = s.name_key, "
    "search_key = s.search_key, "
    "birth_date = s.birth_date, gender = s.gender, phone = s.phone, status = s.status, "
    "updated_at = :now "
    "FROM {staging} s WHERE {batch} AND s.rejected IS NULL AND accounts.bhxh_code = s.bhxh_code "
    "AND (accounts.citizen_id_index {distinct} s.citizen_id_index "
    "OR accounts.full_name <> s.full_name OR accounts.name_key {distinct} s.name_key "
    "OR accounts.birth_date <> s.birth_date OR accounts.gender <> s.gender "
    "OR accounts.phone {distinct} s.phone OR accounts.status <> s.status)"
)
_INSERT = (
    "INSERT INTO accounts (bhxh_code, citizen_id_sealed, citizen_id_index, full_name, name_key, "
    "search_key, birth_date, gender, phone, status, created_at, updated_at) "
    "SELECT s.bhxh_code, s.citizen_id_sealed, s.citizen_id_index, s.full_name, s.name_key, "
    "s.search_key, s.birth_date, s.gender, s.phone, s.status, :now, :now FROM {staging} s "
    "WHERE {batch} AND s.rejected IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.bhxh_code = s.bhxh_code) ORDER BY s.line"
)
_VALID = "SELECT count(*) FROM {staging} s WHERE {batch} AND s.rejected IS NULL"
_REJECTED = (
    "SELECT s.line, s.rejected, s.bhxh_code FROM {staging} s "
    "WHERE {batch} AND s.rejected IS NOT NULL ORDER BY s.line"
)


def _sql(template: str, dialect: str) -> Any:
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return text(template.format(staging=STAGING, batch=_BATCH, distinct=distinct))


@dataclass(frozen=True)
class Relinking:
    """A linked account whose citizen ID the file changes (or removes, or first records)."""

    account_id: int
    link_id: int
    new_citizen_id_sealed: str | None


@dataclass
class BatchConsequences:
    ending: list[int] = field(default_factory=list)
    """Accounts the file locks or closes: their sessions end."""
    relinking: list[Relinking] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


@dataclass(frozen=True)
class BatchCounts:
    added: int
    updated: int
    unchanged: int


async def stage(session: AsyncSession, run_id: int, rows: Sequence[AccountRow]) -> None:
    """Write valid rows to the staging table: COPY on PostgreSQL, one executemany elsewhere."""
    if not rows:
        return
    records = [row.record(run_id) for row in rows]
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(STAGING, records=records, columns=STAGED_COLUMNS)
        return
    # Untyped columns: the citizen IDs are sealed already.
    staging = sql_table(STAGING, *(column(name) for name in STAGED_COLUMNS))
    await session.execute(
        insert(staging), [dict(zip(STAGED_COLUMNS, record, strict=True)) for record in records]
    )


@dataclass(frozen=True)
class SlicePlan:
    """What every slice of one run shares."""

    layout: Layout
    today: date
    run_id: int | None
    """None for a dry run: the rows are checked and counted, and nothing is staged."""


@dataclass
class SliceOutcome:
    """What a worker answers for one slice: counts and the rejected rows, never the rows."""

    rows_read: int = 0
    staged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    error: str | None = None
    """The file error the slice showed (then nothing of it was staged)."""


COPY_ROWS = 20_000
"""Rows per COPY inside a slice's transaction: what a worker holds at once."""


async def stage_slice(connection: Any, plan: SlicePlan, piece: Slice) -> SliceOutcome:
    """In a worker process (`parallel_load`): check one slice of the file and COPY its valid
    rows into the staging table, in one transaction on the worker's asyncpg `connection`
    (None for a dry run: nothing is written)."""
    outcome = SliceOutcome()
    records: list[tuple[Any, ...]] = []
    try:
        if connection is None:
            for row in read_slice(plan.layout, piece, plan.today):
                _count(outcome, row, records, None)
            return outcome
        async with connection.transaction():
            for row in read_slice(plan.layout, piece, plan.today):
                _count(outcome, row, records, plan.run_id)
                if len(records) >= COPY_ROWS:
                    await _copy(connection, records)
            await _copy(connection, records)
    except ImportFileError as error:
        return SliceOutcome(error=str(error))
    return outcome


def _count(
    outcome: SliceOutcome,
    row: AccountRow | RejectedRow,
    records: list[tuple[Any, ...]],
    run_id: int | None,
) -> None:
    outcome.rows_read += 1
    if isinstance(row, RejectedRow):
        outcome.rejected.append(row)
        return
    outcome.staged += 1
    if run_id is not None:
        records.append(row.record(run_id))


async def _copy(connection: Any, records: list[tuple[Any, ...]]) -> None:
    if records:
        await connection.copy_records_to_table(STAGING, records=records, columns=STAGED_COLUMNS)
        records.clear()


async def clear_staging(session: AsyncSession) -> None:
    """Remove every staged row: imports run one at a time, so whatever is staged is the
    current run's, or an interrupted run's."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(text(f"TRUNCATE {STAGING}"))
        return
    await session.execute(delete(StagedAccountRow))


async def last_line(session: AsyncSession, run_id: int) -> int:
    found = await session.scalar(
        select(StagedAccountRow.line)
        .where(StagedAccountRow.run_id == run_id)
        .order_by(StagedAccountRow.line.desc())
        .limit(1)
    )
    return int(found or 0)


async def mark_repeated(session: AsyncSession, run_id: int) -> None:
    """Reject the lines that repeat an earlier line's BHXH code or citizen ID (the file alone
    decides this, so once per run, before the first batch). Fresh statistics first, so the
    batches' joins use the indexes."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await session.execute(text(f"ANALYZE {STAGING}"))
    for reason, key in (
        (REPEATED_BHXH_CODE, "bhxh_code"),
        (REPEATED_CITIZEN_ID, "citizen_id_index"),
    ):
        await session.execute(
            text(_REPEATED.replace("{key}", key)), {"run": run_id, "reason": reason}
        )


async def prepare_batch(
    session: AsyncSession, run_id: int, first: int, end: int
) -> BatchConsequences:
    """Steps 1 and 2 for the lines [first, end): reject, then say what the change means."""
    connection = await session.connection()
    dialect = connection.dialect.name
    where = {"run": run_id, "first": first, "end": end}
    await session.execute(
        text(_REJECT.format(condition=_HELD)), where | {"reason": HELD_BY_ANOTHER}
    )
    consequences = BatchConsequences()
    consequences.rejected = [
        RejectedRow(line, reason.split(".")[0], reason.split(".")[1], mask_bhxh_code(code))
        for line, reason, code in await session.execute(_sql(_REJECTED, dialect), where)
    ]
    consequences.ending = list(await session.scalars(_sql(_ENDING, dialect), where))
    consequences.relinking = [
        Relinking(row.account_id, row.link_id, row.citizen_id_sealed)
        for row in await session.execute(_sql(_RELINKING, dialect), where)
    ]
    return consequences


async def apply_batch(
    session: AsyncSession, run_id: int, first: int, end: int, now: datetime
) -> BatchCounts:
    """Step 3 for the lines [first, end): update what differs, insert what is new."""
    connection = await session.connection()
    dialect = connection.dialect.name
    where = {"run": run_id, "first": first, "end": end}
    valid = int(await session.scalar(_sql(_VALID, dialect), where) or 0)
    updated = await session.execute(_sql(_UPDATE, dialect), where | {"now": now})
    added = await session.execute(_sql(_INSERT, dialect), where | {"now": now})
    n_updated = int(updated.rowcount or 0)  # type: ignore[attr-defined]
    n_added = int(added.rowcount or 0)  # type: ignore[attr-defined]
    return BatchCounts(n_added, n_updated, valid - n_added - n_updated)
