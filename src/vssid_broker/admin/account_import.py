"""One import of the agency's accounts, top to bottom: `vssid-broker accounts import FILE`.

1. **Claim**: one import at a time (a PostgreSQL advisory lock, held by a connection of its own,
   so a killed import frees it); a run the previous process left `running` is `interrupted`.
2. **Stage** every valid row of the file (`accounts.importing` reads and checks it;
   `accounts.import_merge.stage` writes it); rejected rows go to the report as they come. A
   file error stops the run here, before any account changed: the staged rows are dropped.
3. **Merge** the staged rows batch by batch, each batch in one transaction with what it means
   for the people (sessions of locked or closed accounts ended, links of changed citizen IDs
   suspended for review) and the run's progress. A run killed mid-way is picked up by the
   next run of the same file (same SHA-256) at the batch it had reached, so the result is the
   one a clean run gives.
4. **Finish**: the run's row completed, and one audit event for the whole run.

A dry run reads and checks the file only: it writes the report and counts, and records itself
as a run (`dry_run`, with one audit event) so staff see it, and writes nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vssid_broker import parallel_load, sealing
from vssid_broker.accounts import import_merge
from vssid_broker.accounts.importing import (
    SLICE_BYTES,
    AccountFile,
    AccountRow,
    ImportFileError,
    RejectedRow,
    Slice,
    read_slice,
)
from vssid_broker.accounts.models import ACCOUNT_CITIZEN_ID, Account, ImportRun, ImportRunStatus
from vssid_broker.admin.models import StaffRole
from vssid_broker.audit import service as audit
from vssid_broker.audit.events import AuditEventType
from vssid_broker.errors import CommandRefused
from vssid_broker.linking.models import FederatedLink
from vssid_broker.linking.record_changes import suspend_for_review
from vssid_broker.sessions.refresh_tokens import RefreshTokens
from vssid_broker.sessions.service import end_all_for_accounts

STAGE_CHUNK = 10_000
MERGE_BATCH = 20_000
_LOCK_KEY = 0x56535349_44494D50  # "VSSIDIMP": the advisory lock of the accounts import


@dataclass(frozen=True)
class ProgressEvent:
    phase: str
    """`read` (reading, checking and staging the file) or `merge`."""
    rows: int
    """Rows done in this phase so far."""
    bytes_read: int = 0
    """Read: bytes of the file read so far (compressed, if it is)."""
    rows_to_merge: int = 0
    """Merge: the lines the merge goes through (rejected ones included)."""


Progress = Callable[[ProgressEvent], None]


class ImportAlreadyRunning(CommandRefused):
    """Another import holds the import lock."""


@dataclass
class ImportSummary:
    run_id: int | None
    rows_read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    sessions_ended: int = 0
    reviews_opened: int = 0
    file_digest: str = ""
    resumed_from: int | None = None
    """The interrupted run whose batches this run did not apply again."""
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each phase took: read (reading, checking, staging), merge, finish (with a
    first load's index builds)."""

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


class _Report:
    """The reject report, written beside its final name and moved there when the run ends, so
    a run stopped on a file error leaves no half report behind."""

    HEADER = ("line", "field", "reason", "bhxh_code")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._handle = self._partial.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._handle)
        self._writer.writerow(self.HEADER)

    def write(self, rejected: RejectedRow) -> None:
        self._writer.writerow((rejected.line, rejected.field, rejected.reason, rejected.bhxh_code))

    def keep(self) -> None:
        self._handle.close()
        os.replace(self._partial, self.path)

    def drop(self) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)


@dataclass(frozen=True)
class AccountImport:
    """What one run needs: the database, the refresh tokens (to end sessions), who runs it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    refresh: RefreshTokens
    actor: str
    clock: Callable[[], datetime]
    progress: Progress = lambda _event: None
    merge_batch: int = MERGE_BATCH
    workers: int = 1
    """Processes that check and stage the file's slices (PostgreSQL); 1: this one alone."""
    slice_bytes: int = SLICE_BYTES

    async def run(
        self, source: IO[bytes], *, file_name: str, report_path: Path, dry_run: bool = False
    ) -> ImportSummary:
        report = _Report(report_path)
        try:
            if dry_run:
                summary = await self._dry_run(source, file_name, report)
            else:
                summary = await self._import(source, file_name, report)
        except BaseException:
            report.drop()
            raise
        report.keep()
        return summary

    async def _read(self, source: IO[bytes], report: _Report, run_id: int | None) -> ImportSummary:
        """Read and check every row; stage the valid ones when `run_id` is given. On
        PostgreSQL with `workers` > 1 the slices of the file are checked and staged by worker
        processes (`parallel_load`); this process reads, hands out and counts."""
        summary = ImportSummary(run_id)
        parallel = self.workers > 1 and self.engine.dialect.name == "postgresql"
        accounts = AccountFile(
            source,
            today=self.clock().date(),
            slice_bytes=self.slice_bytes if parallel else min(self.slice_bytes, 1 << 20),
        )
        layout = await asyncio.to_thread(accounts.open)
        plan = import_merge.SlicePlan(layout, self.clock().date(), run_id)

        def counted(outcome: import_merge.SliceOutcome) -> None:
            if outcome.error is not None:
                raise ImportFileError(outcome.error)
            summary.rows_read += outcome.rows_read
            for rejected in outcome.rejected:
                summary.rejected_by_reason[rejected.code] += 1
                report.write(rejected)
            self.progress(ProgressEvent("read", summary.rows_read, accounts.bytes_read))

        if parallel:
            await self._read_in_workers(accounts, plan, counted)
        else:
            for piece in accounts.slices():
                counted(await self._stage_here(plan, piece))
        self.progress(ProgressEvent("read", summary.rows_read, accounts.bytes_read))
        summary.file_digest = accounts.digest
        return summary

    async def _read_in_workers(
        self,
        accounts: AccountFile,
        plan: import_merge.SlicePlan,
        counted: Callable[[import_merge.SliceOutcome], None],
    ) -> None:
        """The slices in order through the workers. A file error this process meets (a line
        too long, a gzip stream cut short) comes after every slice already handed out, so
        those are counted first: the first bad line of the file is the one named."""
        late: list[ImportFileError] = []

        async def slices() -> AsyncIterator[tuple[import_merge.SlicePlan, Slice]]:
            pieces = accounts.slices()
            while True:
                try:
                    piece = await asyncio.to_thread(next, pieces, None)
                except ImportFileError as error:
                    late.append(error)
                    return
                if piece is None:
                    return
                yield plan, piece

        async with parallel_load.in_workers(
            self.engine if plan.run_id is not None else None,
            import_merge.stage_slice,
            workers=self.workers,
            # The workers seal with this process's keys (they are spawned, not forked).
            worker_setup=sealing.install,
            worker_setup_args=(sealing.installed(),),
            # The staging table is refilled from the file after a crash: its commits need
            # not wait for the disk.
            server_settings={"synchronous_commit": "off"},
        ) as workers:
            async for outcome in workers.map(slices()):
                counted(outcome)
        if late:
            raise late[0]

    async def _stage_here(
        self, plan: import_merge.SlicePlan, piece: Slice
    ) -> import_merge.SliceOutcome:
        outcome = import_merge.SliceOutcome()
        chunk: list[AccountRow] = []
        try:
            for row in read_slice(plan.layout, piece, plan.today):
                outcome.rows_read += 1
                if isinstance(row, RejectedRow):
                    outcome.rejected.append(row)
                elif plan.run_id is not None:
                    chunk.append(row)
                    if len(chunk) >= STAGE_CHUNK:
                        await self._stage(plan.run_id, chunk)
        except ImportFileError as error:
            return import_merge.SliceOutcome(error=str(error))
        if plan.run_id is not None:
            await self._stage(plan.run_id, chunk)
        return outcome

    async def _stage(self, run_id: int, chunk: list[AccountRow]) -> None:
        async with self.sessions.begin() as session:
            await import_merge.stage(session, run_id, chunk)
        chunk.clear()

    async def _dry_run(self, source: IO[bytes], file_name: str, report: _Report) -> ImportSummary:
        """Read and check only; the run is recorded (`dry_run`) so staff see the check was made,
        with its counts or the file error it stopped on, and nothing else is written."""
        started = self.clock()
        error: ImportFileError | None = None
        try:
            summary = await self._read(source, report, run_id=None)
        except ImportFileError as stopped:
            error, summary = stopped, ImportSummary(None)
        finished = self.clock()
        problem = None if error is None else str(error)[:500]
        async with self.sessions.begin() as session:
            run = ImportRun(
                actor=self.actor,
                file_name=file_name[-300:],
                status=ImportRunStatus.DRY_RUN,
                started_at=started,
                finished_at=finished,
                rows_read=summary.rows_read,
                file_digest=summary.file_digest or None,
                rejected=summary.rejected,
                rejected_by_reason=dict(summary.rejected_by_reason),
                error=problem,
            )
            session.add(run)
            await session.flush()
            summary.run_id = run.id
            audit.record(
                session,
                event_type=AuditEventType.ACCOUNTS_IMPORT,
                outcome="dry_run",
                now=finished,
                actor=self.actor,
                import_run_id=run.id,
                rows_read=summary.rows_read,
                rejected=summary.rejected,
                error=problem,
            )
        if error is not None:
            raise error
        return summary

    async def _import(self, source: IO[bytes], file_name: str, report: _Report) -> ImportSummary:
        async with self.engine.connect() as lock:
            # Autocommit: the lock is the session's, and no transaction stays open for hours.
            await lock.execution_options(isolation_level="AUTOCOMMIT")
            postgres = lock.dialect.name == "postgresql"
            if postgres:
                held = await lock.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK_KEY}
                )
                if not held:
                    raise ImportAlreadyRunning("another accounts import is running; try later")
            try:
                return await self._import_locked(source, file_name, report)
            finally:
                if postgres:  # the connection goes back to the pool: the lock must not
                    await lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})

    async def _import_locked(
        self, source: IO[bytes], file_name: str, report: _Report
    ) -> ImportSummary:
        started = time.monotonic()
        run_id, interrupted = await self._claim(file_name)
        try:
            summary = await self._read(source, report, run_id)
        except ImportFileError as error:
            await self._fail(run_id, str(error))
            raise
        summary.seconds["read"] = time.monotonic() - started
        resumed = await self._staged(run_id, summary, interrupted)
        await self._merge(run_id, summary, resumed, report)
        summary.seconds["merge"] = time.monotonic() - started - summary.seconds["read"]
        await self._finish(run_id, summary)
        summary.seconds["finish"] = (
            time.monotonic() - started - summary.seconds["read"] - summary.seconds["merge"]
        )
        return summary

    async def _claim(self, file_name: str) -> tuple[int, list[int]]:
        now = self.clock()
        async with self.sessions.begin() as session:
            # The indexes a killed first load left dropped; the rest goes as for any run.
            await self._restore_indexes(session)
            interrupted = list(
                await session.scalars(
                    update(ImportRun)
                    .where(ImportRun.status == ImportRunStatus.RUNNING)
                    .values(status=ImportRunStatus.INTERRUPTED, finished_at=now)
                    .returning(ImportRun.id)
                    .execution_options(synchronize_session=False)
                )
            )
            await import_merge.clear_staging(session)  # an interrupted run's rows
            run = ImportRun(
                actor=self.actor,
                file_name=file_name[-300:],
                status=ImportRunStatus.RUNNING,
                started_at=now,
                rejected_by_reason={},
            )
            session.add(run)
            await session.flush()
            return run.id, interrupted

    async def _staged(
        self, run_id: int, summary: ImportSummary, interrupted: list[int]
    ) -> ImportRun | None:
        """Record what reading found; the interrupted run of the same file to carry on, if any."""
        async with self.sessions.begin() as session:
            run = await session.get_one(ImportRun, run_id)
            run.rows_read = summary.rows_read
            run.file_digest = summary.file_digest
            run.rejected = summary.rejected
            run.rejected_by_reason = dict(summary.rejected_by_reason)
            newest_before = await session.scalar(
                select(ImportRun)
                .where(
                    ImportRun.id < run_id,
                    ImportRun.status.in_([ImportRunStatus.COMPLETED, ImportRunStatus.INTERRUPTED]),
                )
                .order_by(ImportRun.id.desc())
                .limit(1)
            )
            if (
                newest_before is None
                or newest_before.id not in interrupted
                or newest_before.file_digest != summary.file_digest
                or newest_before.merged_through_line == 0
            ):
                return None
            # Its batches are applied: carry their counts, begin at the next batch.
            for name in ("added", "updated", "unchanged", "sessions_ended", "reviews_opened"):
                setattr(summary, name, getattr(newest_before, name))
                setattr(run, name, getattr(newest_before, name))
            for reason in import_merge.MERGE_REASONS:
                if count := newest_before.rejected_by_reason.get(reason, 0):
                    summary.rejected_by_reason[reason] += count
            run.rejected = summary.rejected
            run.rejected_by_reason = dict(summary.rejected_by_reason)
            run.merged_through_line = newest_before.merged_through_line
            summary.resumed_from = newest_before.id
            return newest_before

    async def _merge(
        self, run_id: int, summary: ImportSummary, resumed: ImportRun | None, report: _Report
    ) -> None:
        async with self.sessions.begin() as session:
            await import_merge.mark_repeated(session, run_id)
            last = await import_merge.last_line(session, run_id)
            first_load = resumed is None and await self._first_load(session)
        first = resumed.merged_through_line if resumed is not None else 1
        start = first
        self.progress(ProgressEvent("merge", 0, rows_to_merge=max(last - start + 1, 0)))
        while first <= last:
            end = first + self.merge_batch
            await self._merge_batch(run_id, first, end, summary, report, first_load=first_load)
            done = min(end, last + 1) - start
            self.progress(ProgressEvent("merge", done, rows_to_merge=last - start + 1))
            first = end

    async def _first_load(self, session: AsyncSession) -> bool:
        """On PostgreSQL, into an empty accounts table: its secondary indexes and unique
        constraints are dropped now and built once, sorted, when the run finishes (`_finish`),
        instead of grown row by row at random keys (the blind index is random by design).
        What to rebuild is kept in a table of its own (`parallel_load`) in this transaction:
        a run killed before the rebuild leaves it for the next run, which rebuilds first."""
        if self.engine.dialect.name != "postgresql":
            return False
        if await session.scalar(select(Account.id).limit(1)) is not None:
            return False
        connection = await session.connection()
        await parallel_load.defer_constraints(connection, [Account.__tablename__])
        return True

    async def _merge_batch(
        self,
        run_id: int,
        first: int,
        end: int,
        summary: ImportSummary,
        report: _Report,
        *,
        first_load: bool,
    ) -> None:
        now = self.clock()
        async with self.sessions.begin() as session:
            if self.engine.dialect.name == "postgresql":
                # A batch's commit is recorded with its progress: a server crash that loses the
                # last few loses them together, and the next run carries on from before them.
                await session.execute(text("SET LOCAL synchronous_commit = off"))
            if first_load:
                consequences = import_merge.BatchConsequences(
                    rejected=await import_merge.rejected_in_batch(session, run_id, first, end)
                )
                counts = await import_merge.first_load_batch(session, run_id, first, end, now)
            else:
                consequences = await import_merge.prepare_batch(session, run_id, first, end)
                await end_all_for_accounts(session, self.refresh, consequences.ending, now)
                reviews = 0
                for relinking in consequences.relinking:
                    reviews += await self._relink(session, run_id, relinking, now)
                summary.reviews_opened += reviews
                counts = await import_merge.apply_batch(session, run_id, first, end, now)
            merge_rejects = Counter(row.code for row in consequences.rejected)
            summary.added += counts.added
            summary.updated += counts.updated
            summary.unchanged += counts.unchanged
            summary.sessions_ended += len(consequences.ending)
            summary.rejected_by_reason.update(merge_rejects)
            await session.execute(
                update(ImportRun)
                .where(ImportRun.id == run_id)
                .values(
                    merged_through_line=end,
                    added=summary.added,
                    updated=summary.updated,
                    unchanged=summary.unchanged,
                    sessions_ended=summary.sessions_ended,
                    reviews_opened=summary.reviews_opened,
                    rejected=summary.rejected,
                    rejected_by_reason=dict(summary.rejected_by_reason),
                )
                .execution_options(synchronize_session=False)
            )
        for rejected in consequences.rejected:
            report.write(rejected)

    async def _relink(
        self, session: AsyncSession, run_id: int, relinking: import_merge.Relinking, now: datetime
    ) -> int:
        link = await session.get_one(FederatedLink, relinking.link_id)
        account = await session.get_one(Account, relinking.account_id)
        new = relinking.new_citizen_id_sealed  # sealed for the account's row (its BHXH code)
        staged = ACCOUNT_CITIZEN_ID.of(account.bhxh_code)
        if new is not None and sealing.installed().open(new, staged) == link.citizen_id:
            return 0  # the account now records the very ID VNeID verified: nothing to review
        opened = await suspend_for_review(
            session,
            self.refresh,
            link=link,
            account=account,
            actor=f"import:{run_id}",
            reason=f"the agency's import run {run_id} changed the account's citizen ID",
            now=now,
        )
        return int(opened)

    async def _fail(self, run_id: int, error: str) -> None:
        async with self.sessions.begin() as session:
            await import_merge.clear_staging(session)  # one import at a time: all are its
            run = await self._close(session, run_id, ImportRunStatus.FAILED, error=error[:500])
            run.error = error[:500]

    async def _close(
        self, session: AsyncSession, run_id: int, status: ImportRunStatus, **audited: Any
    ) -> ImportRun:
        """End the run as `status` with its audit event (outcome: the status), in `session`."""
        now = self.clock()
        run = await session.get_one(ImportRun, run_id)
        run.status = status
        run.finished_at = now
        audit.record(
            session,
            event_type=AuditEventType.ACCOUNTS_IMPORT,
            outcome=status.value,
            now=now,
            actor=self.actor,
            import_run_id=run_id,
            **audited,
        )
        return run

    async def _finish(self, run_id: int, summary: ImportSummary) -> None:
        async with self.sessions.begin() as session:
            # A first load's indexes come back with the run's completion, or not at all.
            rebuilt = await self._restore_indexes(session)
            await import_merge.clear_staging(session)  # one import at a time: all are its
            await self._close(
                session,
                run_id,
                ImportRunStatus.COMPLETED,
                # base64url, not hex: the audit's guard masks any run of 10 or 12 digits.
                file_sha256=base64.urlsafe_b64encode(bytes.fromhex(summary.file_digest))
                .rstrip(b"=")
                .decode(),
                resumed_from=summary.resumed_from,
                rows_read=summary.rows_read,
                added=summary.added,
                updated=summary.updated,
                unchanged=summary.unchanged,
                rejected=summary.rejected,
                rejected_by_reason=dict(summary.rejected_by_reason),
                sessions_ended=summary.sessions_ended,
                reviews_opened=summary.reviews_opened,
            )
        if rebuilt:
            async with self.engine.connect() as connection:
                # Fresh statistics, so the planner sees the new rows and picks the indexes.
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f"ANALYZE {Account.__tablename__}"))

    async def _restore_indexes(self, session: AsyncSession) -> int:
        if self.engine.dialect.name != "postgresql":
            return 0
        return await parallel_load.restore_deferred(await session.connection())


# --- the runs, for staff ------------------------------------------------------------------------
SEES_IMPORT_RUNS = (StaffRole.ADMIN,)
"""Who may list the import runs: what was loaded, when, by whom, with what outcome."""


async def list_runs(
    session: AsyncSession, *, limit: int = 50, offset: int = 0
) -> tuple[list[ImportRun], int]:
    """The import runs, newest first, and how many there are."""
    total = await session.scalar(select(func.count()).select_from(ImportRun))
    rows = await session.scalars(
        select(ImportRun).order_by(ImportRun.id.desc()).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)
