"""`vssid-broker audit verify`: prove the audit trail's hash chain, or name its first break."""

from __future__ import annotations

import argparse
import asyncio
import sys

from vssid_broker.cli.common import Commands, add_command, command_settings
from vssid_broker.config import Settings
from vssid_broker.db import database


def add(commands: Commands) -> None:
    audit = add_command(commands, "audit", "the audit trail", run)
    audit.add_argument(
        "action", choices=["verify"], help="verify: prove the hash chain or name its first break"
    )


def run(args: argparse.Namespace) -> None:
    asyncio.run(verify_chain(command_settings()))


async def verify_chain(settings: Settings) -> None:
    from vssid_broker.audit.chain import verify

    async with database(settings) as db, db.sessions() as session:
        result = await verify(session)
    if result.broken_at is not None:
        sys.exit(
            f"audit chain BROKEN at entry {result.broken_at}: {result.problem} "
            f"({result.entries} entries before it verified)"
        )
    print(f"audit chain verified: {result.entries} entries")
