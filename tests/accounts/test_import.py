"""`vssid-broker accounts import`: what an operator loading the agency's records sees, and what
the people in them notice (sessions ended, links suspended for review)."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import os
import secrets
import signal
import sqlite3
import sys
import uuid
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.accounts.account_files import csv_text, person, write_csv, write_json_lines
from tests.support.clock import MovableClock
from tests.support.database import empty_data_tables
from vssid_broker.accounts import service as accounts_service
from vssid_broker.accounts.importing import ImportFileError
from vssid_broker.accounts.models import Account, ImportRun, StagedAccountRow
from vssid_broker.admin.account_import import AccountImport, ImportSummary
from vssid_broker.audit.models import AuditEvent
from vssid_broker.config import Settings
from vssid_broker.linking.models import FederatedLink, ReviewCase
from vssid_broker.sealing import blind_index
from vssid_broker.sessions.models import BrowserSession


@pytest.fixture
async def importer(
    engine: AsyncEngine,
    db: async_sessionmaker[AsyncSession],
    broker_app: FastAPI,
    clock: MovableClock,
) -> AsyncIterator[AccountImport]:
    await empty_data_tables(engine)
    yield AccountImport(
        engine=engine,
        sessions=db,
        refresh=broker_app.state.broker.refresh_tokens,
        actor="operator:test",
        clock=clock,
        merge_batch=3,  # several batches even for a handful of rows
    )
    await empty_data_tables(engine)


async def run(
    importer: AccountImport, path: Path, *, dry_run: bool = False
) -> tuple[ImportSummary, list[str]]:
    report = path.with_name(path.name + ".rejects.csv")
    with path.open("rb") as source:
        summary = await importer.run(
            source, file_name=path.name, report_path=report, dry_run=dry_run
        )
    return summary, report.read_text(encoding="utf-8").splitlines()


async def accounts(db: async_sessionmaker[AsyncSession]) -> dict[str, tuple[Any, ...]]:
    async with db() as session:
        rows = await session.scalars(select(Account).order_by(Account.bhxh_code))
        return {
            a.bhxh_code: (
                a.citizen_id, a.full_name, a.birth_date.isoformat(), a.gender, a.phone, a.status
            )
            for a in rows
        }  # fmt: skip


async def test_a_file_adds_its_accounts_and_a_second_import_changes_nothing(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    rows = [person(i) for i in range(7)]
    path = write_csv(tmp_path / "accounts.csv", rows)

    first, _ = await run(importer, path)
    held = await accounts(db)
    second, report = await run(importer, path)

    assert (first.added, first.updated, first.unchanged, first.rejected) == (7, 0, 0, 0)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 7)
    assert await accounts(db) == held
    assert held[rows[3]["bhxh_code"]][0] == rows[3]["citizen_id"]
    assert report == ["line,field,reason,bhxh_code"]
    async with db() as session:
        stored = await session.scalar(
            text("SELECT citizen_id_sealed FROM accounts WHERE bhxh_code = :code"),
            {"code": rows[3]["bhxh_code"]},
        )
        found = await session.scalar(
            select(Account.bhxh_code).where(
                Account.citizen_id_index == blind_index(rows[3]["citizen_id"])
            )
        )
        staged = await session.scalar(select(func.count()).select_from(StagedAccountRow))
    assert rows[3]["citizen_id"] not in stored  # sealed at rest
    assert found == rows[3]["bhxh_code"]  # found by its blind index, as at login
    assert staged == 0


async def test_json_lines_gzip_and_the_agencys_dates_give_the_same_accounts_as_csv(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    rows = [person(i) for i in range(4)]
    await run(importer, write_csv(tmp_path / "a.csv", rows))
    from_csv = await accounts(db)
    await empty_data_tables(importer.engine)

    agency = [
        row | {"birth_date": "/".join(reversed(row["birth_date"].split("-")))} for row in rows
    ]
    summary, _ = await run(
        importer, write_json_lines(tmp_path / "a.jsonl.gz", agency, gzipped=True)
    )

    assert summary.added == 4
    assert await accounts(db) == from_csv


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"bhxh_code": "01234"}, "bhxh_code", "format"),
        ({"bhxh_code": "9940000001"}, "bhxh_code", "province_prefix"),
        ({"citizen_id": "00108500010"}, "citizen_id", "format"),
        ({"citizen_id": "003085000101"}, "citizen_id", "place_code"),
        ({"citizen_id": "001285000101", "birth_date": "1985-01-01"}, "citizen_id",
         "century_gender_digit"),
        ({"citizen_id": "001090000101", "birth_date": "1985-01-01", "gender": "male"},
         "citizen_id", "birth_year"),
        ({"full_name": "   "}, "full_name", "empty"),
        ({"full_name": "Lê\u0007Văn"}, "full_name", "control_character"),
        ({"birth_date": "31/02/1990"}, "birth_date", "not_a_date"),
        ({"birth_date": "2999-01-01"}, "birth_date", "in_the_future"),
        ({"gender": "x"}, "gender", "unknown"),
        ({"phone": "0212345678"}, "phone", "not_a_vietnamese_mobile"),
        ({"status": "suspended"}, "status", "unknown"),
    ],
)  # fmt: skip
async def test_a_bad_row_is_reported_by_line_field_and_reason_and_the_rest_imports(
    importer: AccountImport,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    change: dict[str, str],
    field: str,
    reason: str,
) -> None:
    rows = [person(0), person(1, **change), person(2)]
    summary, report = await run(importer, write_csv(tmp_path / "a.csv", rows))

    assert summary.added == 2
    assert dict(summary.rejected_by_reason) == {f"{field}.{reason}": 1}
    assert report[1].split(",")[:3] == ["3", field, reason]  # line 3: the header is line 1
    assert rows[1]["bhxh_code"] not in await accounts(db)
    assert person(1)["citizen_id"] not in "\n".join(report)


async def test_a_name_is_stored_unicode_normalised(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    decomposed = "Nguye\u0302\u0303n  Thi\u0323 Thu\u031b\u0309"  # NFD, two spaces
    await run(importer, write_csv(tmp_path / "a.csv", [person(0, full_name=decomposed)]))

    assert (await accounts(db))[person(0)["bhxh_code"]][1] == "Nguyễn Thị Thử"
    # ...and a clerk finds the imported person as for any other, without diacritics.
    async with db() as session:
        found = await accounts_service.search(session, "nguyen thi thu")
    assert [a.bhxh_code for a in found] == [person(0)["bhxh_code"]]


async def test_a_citizen_id_another_account_holds_is_rejected_never_moved(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await run(importer, write_csv(tmp_path / "a.csv", [person(0), person(1)]))
    taken = person(1, citizen_id=person(0)["citizen_id"], birth_date=person(0)["birth_date"],
                   gender=person(0)["gender"])  # fmt: skip
    same = {key: person(5)[key] for key in ("citizen_id", "birth_date", "gender")}
    twice = [person(5), person(6, **same)]

    summary, report = await run(importer, write_csv(tmp_path / "b.csv", [taken, *twice]))

    held = await accounts(db)
    assert held[person(0)["bhxh_code"]][0] == person(0)["citizen_id"]
    assert held[person(1)["bhxh_code"]][0] == person(1)["citizen_id"]
    assert person(6)["bhxh_code"] not in held
    assert dict(summary.rejected_by_reason) == {
        "citizen_id.held_by_another_account": 1,
        "citizen_id.repeated_in_file": 1,
    }
    assert {line.split(",")[0] for line in report[1:]} == {"2", "4"}


async def test_changes_update_accounts_end_sessions_of_locked_ones_and_suspend_changed_links(
    importer: AccountImport,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    clock: MovableClock,
) -> None:
    rows = [person(i) for i in range(5)]
    rows[4]["citizen_id"] = ""
    await run(importer, write_csv(tmp_path / "a.csv", rows))
    ids = {code: await _account_id(db, code) for code in (r["bhxh_code"] for r in rows)}
    locked, linked, renamed, gains = (rows[i]["bhxh_code"] for i in (0, 1, 2, 4))
    async with db.begin() as session:
        for code in (locked, linked):
            session.add(_browser_session(ids[code], clock))
        session.add(
            FederatedLink(
                account_id=ids[linked], provider="https://vneid.example", subject="subject-1",
                citizen_id=rows[1]["citizen_id"], method="citizen_id_match", linked_by="system",
            )
        )  # fmt: skip
    new_id = rows[1]["citizen_id"][:6] + "999999"
    changes = [
        rows[0] | {"status": "locked"},
        rows[1] | {"citizen_id": new_id},
        rows[2] | {"full_name": "Trần Văn Đổi Tên"},
        rows[3],
        rows[4] | {"citizen_id": person(4)["citizen_id"]},
    ]

    summary, _ = await run(importer, write_csv(tmp_path / "b.csv", changes))

    assert (summary.updated, summary.unchanged, summary.added) == (4, 1, 0)
    assert (summary.sessions_ended, summary.reviews_opened) == (1, 1)
    held = await accounts(db)
    assert held[locked][5] == "locked"
    assert held[renamed][1] == "Trần Văn Đổi Tên"
    assert held[linked][0] == new_id
    assert held[gains][0] == person(4)["citizen_id"]  # found by it at the next login
    async with db() as session:
        open_sessions = {
            b.account_id
            for b in await session.scalars(
                select(BrowserSession).where(BrowserSession.revoked_at.is_(None))
            )
        }
        links = await session.scalar(select(func.count()).select_from(FederatedLink))
        case = await session.scalar(select(ReviewCase))
    # The lock ended the locked account's session; the suspended link ended the other's.
    assert open_sessions == set()
    assert links == 0
    assert case is not None
    assert (case.reason, case.status, case.subject) == ("citizen_id_changed", "pending",
                                                        "subject-1")  # fmt: skip
    assert case.citizen_id == rows[1]["citizen_id"]  # what VNeID verified, for staff
    assert case.candidate_account_ids == [ids[linked]]


async def test_a_dry_run_counts_and_changes_nothing(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    rows = [person(0), person(1, gender="?"), person(2)]
    summary, report = await run(importer, write_csv(tmp_path / "a.csv", rows), dry_run=True)

    assert (summary.rows_read, summary.rejected) == (3, 1)
    assert len(report) == 2
    assert await accounts(db) == {}
    async with db() as session:
        runs = list(await session.scalars(select(ImportRun)))
        events = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("accounts%")))
        )
    # Staff see that the file was checked, by whom, with what result.
    assert [(r.status, r.actor, r.rows_read, r.rejected) for r in runs] == [
        ("dry_run", "operator:test", 3, 1)
    ]
    assert runs[0].rejected_by_reason == {"gender.unknown": 1}
    assert [e.outcome for e in events] == ["dry_run"]


async def test_one_audit_event_per_run_with_who_the_file_digest_and_the_counts(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", [person(i) for i in range(6)] + [person(9, gender="?")])
    summary, _ = await run(importer, path)

    async with db() as session:
        events = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("accounts%")))
        )
        run_row = await session.get_one(ImportRun, summary.run_id)
    assert len(events) == 1
    assert events[0].actor == "operator:test"
    assert events[0].details["added"] == 6
    assert events[0].details["rejected_by_reason"] == {"gender.unknown": 1}
    assert len(events[0].details["file_sha256"]) == 43
    assert (run_row.status, run_row.added, run_row.rejected) == ("completed", 6, 1)
    assert run_row.file_digest == summary.file_digest


def _bad_files() -> list[tuple[str, bytes, str]]:
    good = csv_text([person(0), person(1), person(2)]).encode()
    lines = good.splitlines(keepends=True)
    return [
        ("picture.png", b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(64), "not UTF-8"),
        ("notes.txt", "Ghi chú,họp\nmột,hai\n".encode(), "not a CSV file"),
        ("missing.csv", good.replace(b",status", b"", 1), "missing column(s): status"),
        ("unknown.csv", good.replace(b",status", b",status,note", 1), "unknown column(s): note"),
        ("latin1.csv", lines[0] + lines[1] + "Lê Hà\n".encode("latin-1"), "line 3 is not UTF-8"),
        ("nul.csv", lines[0] + lines[1] + b"\x00" + lines[2], "line 3 holds a NUL byte"),
        ("huge.csv", lines[0] + lines[1] + b"a" * 10_000_000 + b"\n", "line 3 is longer than"),
        ("cut.csv.gz", gzip.compress(good * 50)[:-40], "gzip stream is cut short"),
        ("empty.csv", b"", "the file is empty"),
    ]


BAD_FILES = _bad_files()


# Named by file: the contents hold random bytes, and every xdist worker must name them alike.
@pytest.mark.parametrize(("name", "content", "says"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
async def test_a_bad_file_stops_with_one_line_and_changes_nothing(
    importer: AccountImport,
    db: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    name: str,
    content: bytes,
    says: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ImportFileError) as refused:
        await run(importer, path)

    assert says in str(refused.value)
    assert "\n" not in str(refused.value)
    assert await accounts(db) == {}
    assert not path.with_name(name + ".rejects.csv").exists()
    async with db() as session:
        staged = await session.scalar(select(func.count()).select_from(StagedAccountRow))
        runs = list(await session.scalars(select(ImportRun)))
    assert staged == 0
    assert [(r.status, r.error) for r in runs] == [("failed", str(refused.value))]


async def test_rows_that_are_not_rows_are_rejected_and_the_rest_imports(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        f'{{"bhxh_code": "{person(0)["bhxh_code"]}"}}\n[1, 2]\nnot json\n'
        + write_json_lines(tmp_path / "one.jsonl", [person(1)]).read_text(),
        encoding="utf-8",
    )
    summary, report = await run(importer, path)

    assert summary.added == 1
    assert dict(summary.rejected_by_reason) == {
        "full_name.missing": 1,
        "line.not_an_object": 1,
        "line.not_json": 1,
    }
    assert [line.split(",")[0] for line in report[1:]] == ["1", "2", "3"]


async def _account_id(db: async_sessionmaker[AsyncSession], code: str) -> int:
    async with db() as session:
        found = await session.scalar(select(Account.id).where(Account.bhxh_code == code))
    assert found is not None
    return found


def _browser_session(account_id: int, clock: MovableClock) -> BrowserSession:
    now = clock()
    return BrowserSession(
        session_hash=secrets.token_hex(32),
        account_id=account_id,
        acr="level2",
        created_at=now,
        expires_at=now + timedelta(hours=1),
        public_id=str(uuid.uuid4()),
        last_used_at=now,
        csrf_token=secrets.token_hex(16),
    )


# --- interrupted: kill -9 mid-merge, run again ---------------------------------------------------
KILL_ROWS, KILL_BATCH = 12_000, 100


def _cli_env(broker_settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSSID_", "VNEID_SIM_"))}
    assert broker_settings.key_encryption_key is not None
    assert broker_settings.blind_index_key is not None
    return env | {
        "VSSID_DATABASE_URL": broker_settings.database_url,
        "VSSID_KEY_ENCRYPTION_KEY": broker_settings.key_encryption_key.get_secret_value(),
        "VSSID_BLIND_INDEX_KEY": broker_settings.blind_index_key.get_secret_value(),
    }


def _import_command(path: Path) -> list[str]:
    command = str(Path(sys.executable).with_name("vssid-broker"))
    return [command, "accounts", "import", str(path), "--batch-rows", str(KILL_BATCH)]


async def _merged_through(db: async_sessionmaker[AsyncSession]) -> tuple[str, int] | None:
    async with db() as session:
        row = (
            await session.execute(
                select(ImportRun.status, ImportRun.merged_through_line)
                .order_by(ImportRun.id.desc())
                .limit(1)
            )
        ).first()
    return None if row is None else (row[0], row[1])


async def _kill_once_a_batch_is_merged(
    process: asyncio.subprocess.Process,
    db: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    """SIGKILL the import after its first merged batch and before its end, however fast it runs:
    it is stopped (SIGSTOP) while its progress is read, so what is read is what the kill leaves.
    On SQLite a stopped process commits nothing and a reader does not wait for its write lock.
    On PostgreSQL a commit it had already sent may still land, so the run's row is read under
    a row lock, without waiting for one a stopped transaction holds: then it goes on a little."""
    while True:
        assert process.returncode is None, "the import finished before it could be killed"
        process.send_signal(signal.SIGSTOP)
        try:
            if database_url.startswith("sqlite"):
                if await asyncio.to_thread(_sqlite_progress, database_url) > 1:
                    process.send_signal(signal.SIGKILL)
                    return
            else:
                async with db.begin() as session:
                    locked = await session.scalar(
                        select(ImportRun.merged_through_line)
                        .order_by(ImportRun.id.desc())
                        .limit(1)
                        .with_for_update(nowait=True)
                    )
                    if locked is not None and locked > 1:
                        process.send_signal(signal.SIGKILL)
                        await asyncio.wait_for(process.wait(), 60)
                        return
        except DBAPIError as error:  # the row is locked by the stopped import
            assert "lock" in str(error).lower(), error
        process.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.02)


def _sqlite_progress(database_url: str) -> int:
    """The newest run's progress, read outside any write lock (WAL readers never wait)."""
    with closing(sqlite3.connect(database_url.split("///", 1)[1])) as connection:
        row = connection.execute(
            "SELECT merged_through_line FROM import_runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return 0 if row is None else int(row[0])


@pytest.mark.timeout(300)  # three imports of 12,000 rows by the command, on a shared machine
async def test_an_import_killed_mid_merge_and_run_again_gives_the_database_of_one_clean_run(
    importer: AccountImport,
    db: async_sessionmaker[AsyncSession],
    broker_settings: Settings,
    tmp_path: Path,
) -> None:
    rows = [person(i) for i in range(KILL_ROWS)]
    # A citizen ID that moves to another account later in the file: whether the earlier row
    # may take it depends on the order the batches ran in, so a rerun must keep that order.
    rows[KILL_ROWS - 1] |= {key: rows[10][key] for key in ("citizen_id", "birth_date", "gender")}
    rows[3] |= {"gender": "?"}
    path = write_csv(tmp_path / "accounts.csv", rows)
    env = _cli_env(broker_settings)
    indexes = await _account_indexes(importer.engine)

    process = await asyncio.create_subprocess_exec(
        *_import_command(path), env=env, stdout=DEVNULL, stderr=DEVNULL
    )
    try:
        await _kill_once_a_batch_is_merged(process, db, broker_settings.database_url)
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 60)
    killed_at = await _merged_through(db)
    assert killed_at is not None
    assert killed_at[0] == "running"
    assert 1 < killed_at[1] < KILL_ROWS
    half = await accounts(db)
    assert 0 < len(half) < KILL_ROWS - 2
    if importer.engine.dialect.name == "postgresql":
        # A first load: killed while the indexes were down, to be built once at its end.
        assert await _account_indexes(importer.engine) < indexes

    rerun = await _run_command(_import_command(path), env)
    after_kill = await accounts(db)
    await empty_data_tables(importer.engine)
    clean = await _run_command(_import_command(path), env)

    assert rerun.returncode == 0, rerun.stderr
    assert clean.returncode == 0, clean.stderr
    assert "continued interrupted run" in rerun.stdout
    assert await _account_indexes(importer.engine) == indexes
    assert after_kill == await accounts(db)
    assert len(after_kill) == KILL_ROWS - 2
    assert await _account_indexes(importer.engine) == indexes
    # The counts of the continued run add up to those of the clean one.
    assert _counts(rerun.stdout) == _counts(clean.stdout)


async def _account_indexes(engine: AsyncEngine) -> set[str]:
    """The accounts table's indexes and constraints, by name and definition."""
    async with engine.connect() as connection:
        if engine.dialect.name != "postgresql":
            found = await connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'accounts'")
            )
        else:
            found = await connection.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts'"
                    " UNION SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conrelid = 'accounts'::regclass"
                )
            )
        return {f"{name}: {definition}" for name, definition in found}


@dataclass(frozen=True)
class _Finished:
    returncode: int | None
    stdout: str
    stderr: str


async def _run_command(command: list[str], env: dict[str, str]) -> _Finished:
    process = await asyncio.create_subprocess_exec(*command, env=env, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    return _Finished(process.returncode, out.decode(), err.decode())


def _counts(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("added", "rejected", "  "))]


# --- the file read by worker processes, in slices (PostgreSQL) -----------------------------------
def _in_workers(importer: AccountImport) -> AccountImport:
    if importer.engine.dialect.name != "postgresql":
        pytest.skip("worker processes stage with COPY: PostgreSQL's")
    # Slices of a few rows: a handful of rows span several slices and both workers.
    return dataclasses.replace(importer, workers=2, slice_bytes=300)


async def test_worker_processes_reading_slices_give_what_one_process_gives(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    rows = [person(i) for i in range(40)]
    rows[7] |= {"gender": "?"}
    rows[31] |= {"bhxh_code": rows[2]["bhxh_code"]}
    path = write_csv(tmp_path / "a.csv.gz", rows, gzipped=True)
    alone, alone_report = await run(importer, path)
    held = await accounts(db)
    await empty_data_tables(importer.engine)

    parallel, report = await run(_in_workers(importer), path)

    assert await accounts(db) == held
    assert report == alone_report
    assert (parallel.added, parallel.rows_read, parallel.rejected_by_reason) == (
        alone.added, alone.rows_read, alone.rejected_by_reason,
    )  # fmt: skip
    assert parallel.file_digest == alone.file_digest


async def test_worker_processes_name_the_first_bad_line_and_stage_nothing(
    importer: AccountImport, db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    lines = csv_text([person(i) for i in range(30)]).encode().splitlines(keepends=True)
    path = tmp_path / "bad.csv"
    path.write_bytes(b"".join(lines[:20]) + "Lê\n".encode("latin-1") + b"".join(lines[20:25])
                     + b"\x00\n" + b"".join(lines[25:]))  # fmt: skip

    with pytest.raises(ImportFileError, match=r"^line 21 is not UTF-8"):
        await run(_in_workers(importer), path)

    assert await accounts(db) == {}
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(StagedAccountRow)) == 0
