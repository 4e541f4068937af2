"""`vssid-broker seed`: the demo accounts and review cases, or synthetic accounts in bulk."""

from __future__ import annotations

import argparse
import asyncio
import os

from vssid_broker.cli.common import Commands, add_command, command_settings
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow


def add(commands: Commands) -> None:
    seed = add_command(
        commands,
        "seed",
        "insert the demo accounts, or with --accounts N synthetic accounts in bulk",
        run,
    )
    seed.add_argument("--demo", action="store_true", default=True, help=argparse.SUPPRESS)
    seed.add_argument(
        "--accounts", type=int, help="bulk: this many synthetic accounts (COPY on PostgreSQL)"
    )
    seed.add_argument(
        "--vneid-citizens",
        type=int,
        default=10_000,
        help="bulk: the first this many belong to the simulator's generated citizens",
    )
    seed.add_argument("--seed", type=int, default=0, help="bulk: random seed (same as the sim's)")
    seed.add_argument(
        "--no-progress", action="store_true", help="bulk: no progress bar (for logs and CI)"
    )
    seed.add_argument(
        "--workers",
        type=int,
        default=0,
        help="bulk on PostgreSQL: processes loading in parallel, indexes built after the load, "
        "for a database nothing else uses meanwhile (default: one per CPU from 100,000 "
        "accounts up, else 1: one transaction, safe beside a running broker)",
    )


def run(args: argparse.Namespace) -> None:
    settings = command_settings()
    if args.accounts is None:
        asyncio.run(seed_demo(settings))
        return
    asyncio.run(
        seed_bulk(
            settings,
            args.accounts,
            args.vneid_citizens,
            args.seed,
            show_progress=not args.no_progress,
            workers=args.workers,
        )
    )


async def seed_demo(settings: Settings) -> int:
    from vssid_broker.seeding import seed_demo_data

    async with database(settings, current_schema=False) as db, db.sessions.begin() as session:
        seeded = await seed_demo_data(session, issuer=settings.vneid_issuer, now=utcnow())
    print(f"demo accounts added: {seeded.accounts}")
    print(f"demo review cases added: {seeded.cases}")
    return seeded.accounts


async def seed_bulk(
    settings: Settings,
    accounts: int,
    vneid_citizens: int,
    seed: int,
    *,
    show_progress: bool = True,
    workers: int = 0,
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from vssid_broker.seeding.bulk import seed_accounts

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} accounts/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("seeding", total=accounts, rate="-")

        def advance(added: int) -> None:
            progress.advance(task, added)
            speed = progress.tasks[task].speed
            progress.update(task, rate=f"{speed:,.0f}" if speed else "-")

        async with database(settings) as db:
            report = await seed_accounts(
                db.engine,
                accounts,
                vneid_citizens=vneid_citizens,
                seed=seed,
                provider=settings.vneid_issuer,
                progress=advance,
                # Below ~100,000 accounts starting processes and rebuilding indexes costs more
                # than it saves.
                workers=workers or ((os.cpu_count() or 1) if accounts >= 100_000 else 1),
            )
    print(
        f"bulk accounts added: {report.accounts} (insurance periods {report.periods}, "
        f"health cards {report.cards}, links {report.links}) in {report.seconds:.1f} s"
    )
