"""`vssid-broker accounts import FILE`: load or refresh accounts from the agency's records."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from vssid_broker.admin.account_import import MERGE_BATCH, Progress, ProgressEvent
from vssid_broker.cli.common import HELP_FORMAT, Commands, command_settings
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow


def add(commands: Commands) -> None:
    accounts = commands.add_parser(
        "accounts", help="VssID accounts: import the agency's records", formatter_class=HELP_FORMAT
    )
    actions = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    imports = actions.add_parser(
        "import",
        help="add and update accounts from a CSV or JSON Lines file (docs/accounts-import.md)",
        description="Add and update accounts from a CSV (with a header row) or JSON Lines "
        "file, optionally gzip-compressed, keyed by the BHXH code. Rejected rows go to a report "
        "beside the summary; rerunning the same file changes nothing.",
        formatter_class=HELP_FORMAT,
    )
    imports.set_defaults(run=run_import)
    imports.add_argument("file", metavar="FILE", help="the file; - reads standard input")
    imports.add_argument(
        "--dry-run", action="store_true", help="read and check every row; change nothing"
    )
    imports.add_argument(
        "--report",
        type=Path,
        help="where the rejected rows go (default: FILE.rejects.csv beside FILE; for standard "
        "input, accounts-import.rejects.csv here)",
    )
    imports.add_argument(
        "--batch-rows",
        type=int,
        default=MERGE_BATCH,
        help="lines merged per transaction: what a killed run redoes at most",
    )
    imports.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that read, check and stage the file's slices on PostgreSQL (default: "
        "one per CPU)",
    )
    imports.add_argument(
        "--no-progress", action="store_true", help="no progress display (it is plain lines "
        "already when standard error is not a terminal)"
    )  # fmt: skip


def run_import(args: argparse.Namespace) -> None:
    settings = command_settings()
    if args.file == "-":
        report = args.report or Path("accounts-import.rejects.csv")
        source: IO[bytes] = sys.stdin.buffer
        size = None
    else:
        path = Path(args.file)
        report = args.report or path.with_name(path.name + ".rejects.csv")
        from vssid_broker.errors import CommandRefused

        try:
            source = path.open("rb")
        except OSError as error:
            raise CommandRefused(f"cannot read {path}: {error.strerror}") from None
        size = path.stat().st_size
    with source:
        asyncio.run(
            import_file(
                settings,
                source,
                file_name=args.file,
                report=report,
                size=size,
                dry_run=args.dry_run,
                show_progress=not args.no_progress,
                batch_rows=max(args.batch_rows, 1),
                workers=max(args.workers, 1),
            )
        )


async def import_file(
    settings: Settings,
    source: IO[bytes],
    *,
    file_name: str,
    report: Path,
    size: int | None,
    dry_run: bool,
    show_progress: bool,
    batch_rows: int = MERGE_BATCH,
    workers: int = 1,
) -> None:
    from vssid_broker.admin.account_import import AccountImport
    from vssid_broker.sessions.keys import derive_key, load_key_encryption_key
    from vssid_broker.sessions.refresh_tokens import RefreshTokens

    refresh = RefreshTokens(
        settings,
        derive_key(load_key_encryption_key(settings).raw_value, "refresh successors"),
    )
    async with database(settings) as db:
        with _progress(show_progress, size) as progress:
            summary = await AccountImport(
                engine=db.engine,
                sessions=db.sessions,
                refresh=refresh,
                actor=f"operator:{_login_name()}",
                clock=utcnow,
                progress=progress,
                merge_batch=batch_rows,
                workers=workers,
            ).run(source, file_name=file_name, report_path=report, dry_run=dry_run)
    heading = (
        f"dry run {summary.run_id} (nothing changed)" if dry_run else f"import run {summary.run_id}"
    )
    print(f"{heading}: {summary.rows_read:,} rows read, file SHA-256 {summary.file_digest}")
    if summary.resumed_from is not None:
        print(f"continued interrupted run {summary.resumed_from}; its counts are included")
    if not dry_run:
        print(
            f"added {summary.added:,}, updated {summary.updated:,}, unchanged {summary.unchanged:,}"
        )
        print(
            f"sessions ended {summary.sessions_ended:,}, reviews opened {summary.reviews_opened:,}"
        )
    print(f"rejected {summary.rejected:,} (report: {report})")
    for reason, count in sorted(summary.rejected_by_reason.items()):
        print(f"  {reason}: {count:,}")
    if summary.seconds:
        print("seconds: " + ", ".join(f"{k} {v:,.1f}" for k, v in summary.seconds.items()))


@contextmanager
def _progress(show: bool, size: int | None) -> Iterator[Progress]:
    """A rich progress bar on a terminal; elsewhere (a log, CI) a plain line every few seconds."""
    if not show:
        yield lambda _event: None
    elif sys.stderr.isatty():
        with _bar(size) as progress:
            yield progress
    else:
        yield _PlainLines()


@contextmanager
def _bar(size: int | None) -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    columns = (
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>12} rows {task.fields[rate]:>9} rows/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Bar(*columns, console=Console(stderr=True)) as bar:
        read = bar.add_task("reading", total=size, rows="0", rate="-")
        merge = bar.add_task("merging", total=None, rows="0", rate="-", start=False)
        started = {"read": time.monotonic(), "merge": time.monotonic()}

        def show(event: ProgressEvent) -> None:
            rate = event.rows / max(time.monotonic() - started[event.phase], 1e-3)
            rows, speed = f"{event.rows:,}", f"{rate:,.0f}"
            if event.phase == "read":
                bar.update(read, completed=event.bytes_read, rows=rows, rate=speed)
                return
            if not bar.tasks[merge].started:
                bar.update(read, total=bar.tasks[read].completed)
                bar.start_task(merge)
                started["merge"] = time.monotonic()
            bar.update(
                merge, total=event.rows_to_merge, completed=event.rows, rows=rows, rate=speed
            )

        yield show


class _PlainLines:
    """One line to standard error at most every `EVERY` seconds, and at each phase's start."""

    EVERY = 5.0

    def __init__(self) -> None:
        self._phase = ""
        self._started = self._shown = time.monotonic()

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        finished = event.phase == "merge" and event.rows >= event.rows_to_merge > 0
        if event.phase != self._phase:
            self._phase, self._started = event.phase, now
        elif now - self._shown < self.EVERY and not finished:
            return
        self._shown = now
        rate = event.rows / max(now - self._started, 1e-3)
        left = ""
        if event.phase == "merge" and event.rows_to_merge and rate > 0:
            left = f", about {(event.rows_to_merge - event.rows) / rate:,.0f} s left"
        print(
            f"{event.phase}: {event.rows:,} rows, {rate:,.0f} rows/s{left}",
            file=sys.stderr,
            flush=True,
        )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"
