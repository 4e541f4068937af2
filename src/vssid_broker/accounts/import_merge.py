"""Merging an import's staged rows into `accounts`, keyed by the BHXH code, batch by batch.

The SQL here is the same on PostgreSQL and SQLite (both have UPDATE ... FROM) but for the
null-safe comparison, and it is built from names in this module, never from input.

A batch is a range of the file's lines. In the caller's transaction it:

1. finds the rows that change something, in one pass: each row probes the BHXH code's unique
   index once, and only rows that differ (IS DISTINCT FROM, field by field) or are new go on,
   into a temporary table; a rerun of the same file writes nothing;
2. rejects what only the database can show: a citizen ID another account holds (never moved
   silently), looked up by the blind index for changed citizen IDs only;
3. tells the caller which accounts the change means something for (`BatchConsequences`): those
   the file locks or closes, and linked ones whose citizen ID changes — before the accounts
   change, so the caller sees what they were;
4. updates the accounts that differ (by primary key) and inserts the new ones.

Repeats in the file (a BHXH code or citizen ID of an earlier line) are rejected once per run,
before the first batch (`mark_repeated`). A first load into an empty table skips 1-3: every
valid row is new (`first_load_batch`). A citizen ID is compared by its blind index, never
re-sealed when equal (sealing is randomised).
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
_REPEATED = (
    # Every line after the first of its key, in one pass over the run's rows (a sort), once
    # the whole file is staged: a per-row lookup would want an index on random keys.
    f"UPDATE {STAGING} SET rejected = :reason FROM (SELECT line FROM (SELECT line, "  # noqa: S608
    "row_number() OVER (PARTITION BY {key} ORDER BY line) AS nth "
    f"FROM {STAGING} WHERE run_id = :run AND {{key}} IS NOT NULL) numbered WHERE nth > 1) later "
    f"WHERE {STAGING}.run_id = :run AND {STAGING}.line = later.line AND {STAGING}.rejected IS NULL"
)
CHANGED = "import_batch"
"""The batch's rows that differ from their account (or have none): a temporary table."""
_CHANGED_TABLE = (
    "CREATE TEMPORARY TABLE {changed} (line bigint PRIMARY KEY, account_id bigint, "
    "old_status varchar(10), new_status varchar(10), old_index varchar(64), "
    "new_index varchar(64), held integer NOT NULL)"
)
_CHANGES = (
    # The one pass over the batch: each row finds its account by the BHXH code's unique index;
    # only rows that differ go on, and only a citizen ID that changes is looked up (by the
    # blind index) in the other accounts. An equal row costs one index probe and no write.
    "INSERT INTO {changed} (line, account_id, old_status, new_status, old_index, new_index, "
    "held) SELECT s.line, a.id, a.status, s.status, a.citizen_id_index, s.citizen_id_index, "
    "CASE WHEN s.citizen_id_index IS NOT NULL "
    "AND a.citizen_id_index {distinct} s.citizen_id_index AND EXISTS (SELECT 1 FROM accounts o "
    "WHERE o.citizen_id_index = s.citizen_id_index AND o.bhxh_code <> s.bhxh_code) "
    "THEN 1 ELSE 0 END "
    "FROM {staging} s LEFT JOIN accounts a ON a.bhxh_code = s.bhxh_code "
    "WHERE {batch} AND s.rejected IS NULL AND (a.id IS NULL "
    "OR a.citizen_id_index {distinct} s.citizen_id_index "
    "OR a.full_name <> s.full_name OR a.name_key {distinct} s.name_key "
    "OR a.birth_date <> s.birth_date OR a.gender <> s.gender "
    "OR a.phone {distinct} s.phone OR a.status <> s.status)"
)
_HELD = (
    "UPDATE {staging} SET rejected = :reason WHERE run_id = :run "
    "AND line IN (SELECT line FROM {changed} WHERE held = 1)"
)
_ENDING = (
    "SELECT c.account_id FROM {changed} c WHERE c.held = 0 AND c.account_id IS NOT NULL "
    "AND c.new_status <> 'active' AND c.old_status <> c.new_status ORDER BY c.line"
)
_RELINKING = (
    "SELECT c.account_id, l.id AS link_id, s.citizen_id_sealed FROM {changed} c "
    "JOIN federated_links l ON l.account_id = c.account_id "
    "JOIN {staging} s ON s.run_id = :run AND s.line = c.line "
    "WHERE c.held = 0 AND c.old_index {distinct} c.new_index ORDER BY c.line"
)
_UPDATE = (
    # By the account's primary key, only the accounts that differ.
    "UPDATE accounts SET "
    "citizen_id_sealed = CASE WHEN accounts.citizen_id_index {distinct} s.citizen_id_index "
    "THEN s.citizen_id_sealed ELSE accounts.citizen_id_sealed END, "
    "citizen_id_index = s.citizen_id_index, full_name = s.full_name, name_key = s.name_key, "
    "search_key = s.search_key, "
    "birth_date = s.birth_date, gender = s.gender, phone = s.phone, status = s.status, "
    "updated_at = :now "
    "FROM {changed} c JOIN {staging} s ON s.run_id = :run AND s.line = c.line "
    "WHERE accounts.id = c.account_id AND c.held = 0"
)
_ADD_COLUMNS = (
    "INSERT INTO accounts (bhxh_code, citizen_id_sealed, citizen_id_index, full_name, name_key, "
    "search_key, birth_date, gender, phone, status, created_at, updated_at) "
    "SELECT s.bhxh_code, s.citizen_id_sealed, s.citizen_id_index, s.full_name, s.name_key, "
    "s.search_key, s.birth_date, s.gender, s.phone, s.status, :now, :now "
)
_INSERT = (
    _ADD_COLUMNS + "FROM {changed} c JOIN {staging} s ON s.run_id = :run AND s.line = c.line "
    "WHERE c.account_id IS NULL AND c.held = 0 ORDER BY c.line"
)
_INSERT_FIRST_LOAD = (
    # Into an accounts table that was empty when the merge began (`first_load`): nothing to
    # compare, and nothing another account can hold (repeats in the file are rejected).
    _ADD_COLUMNS + "FROM {staging} s WHERE {batch} AND s.rejected IS NULL ORDER BY s.line"
)
_VALID = "SELECT count(*) FROM {staging} s WHERE {batch} AND s.rejected IS NULL"
_REJECTED = (
    "SELECT s.line, s.rejected, s.bhxh_code FROM {staging} s "
    "WHERE {batch} AND s.rejected IS NOT NULL ORDER BY s.line"
)


def _sql(template: str, dialect: str) -> Any:
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return text(template.format(staging=STAGING, batch=_BATCH, distinct=distinct, changed=CHANGED))


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
    """Steps 1 and 2 for the lines [first, end): find the rows that change something, reject
    what another account holds, then say what the change means. `apply_batch` follows in the
    same transaction."""
    connection = await session.connection()
    dialect = connection.dialect.name
    where = {"run": run_id, "first": first, "end": end}
    await session.execute(_sql(_CHANGED_TABLE, dialect))
    await session.execute(_sql(_CHANGES, dialect), where)
    if dialect == "postgresql":
        # A temporary table has no statistics unless asked: the joins below need them.
        await session.execute(text(f"ANALYZE {CHANGED}"))
    await session.execute(_sql(_HELD, dialect), where | {"reason": HELD_BY_ANOTHER})
    consequences = BatchConsequences(rejected=await rejected_in_batch(session, run_id, first, end))
    consequences.ending = list(await session.scalars(_sql(_ENDING, dialect), where))
    consequences.relinking = [
        Relinking(row.account_id, row.link_id, row.citizen_id_sealed)
        for row in await session.execute(_sql(_RELINKING, dialect), where)
    ]
    return consequences


async def rejected_in_batch(
    session: AsyncSession, run_id: int, first: int, end: int
) -> list[RejectedRow]:
    """The lines [first, end) the merge rejected (repeats, citizen IDs held by another)."""
    connection = await session.connection()
    where = {"run": run_id, "first": first, "end": end}
    return [
        RejectedRow(line, reason.split(".")[0], reason.split(".")[1], mask_bhxh_code(code))
        for line, reason, code in await session.execute(
            _sql(_REJECTED, connection.dialect.name), where
        )
    ]


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
    await session.execute(text(f"DROP TABLE {CHANGED}"))
    n_updated = int(updated.rowcount or 0)  # type: ignore[attr-defined]
    n_added = int(added.rowcount or 0)  # type: ignore[attr-defined]
    return BatchCounts(n_added, n_updated, valid - n_added - n_updated)


async def first_load_batch(
    session: AsyncSession, run_id: int, first: int, end: int, now: datetime
) -> BatchCounts:
    """The lines [first, end) of a first load: every valid row is a new account."""
    connection = await session.connection()
    where = {"run": run_id, "first": first, "end": end, "now": now}
    added = await session.execute(_sql(_INSERT_FIRST_LOAD, connection.dialect.name), where)
    return BatchCounts(int(added.rowcount or 0), 0, 0)  # type: ignore[attr-defined]
