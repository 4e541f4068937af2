"""`vssid-broker purge`: every kind of row past its retention period (docs/privacy.md)."""

from __future__ import annotations

import argparse
import asyncio

from vssid_broker.cli.common import Commands, add_command, command_settings
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow


def add(commands: Commands) -> None:
    add_command(
        commands,
        "purge",
        "delete what is past its retention period: expired login transactions, sessions, "
        "refresh tokens and used jtis, decided review cases, withdrawn consents, old audit "
        "events (run it daily; docs/privacy.md)",
        run,
    )


def run(args: argparse.Namespace) -> None:
    asyncio.run(purge_expired(command_settings()))


async def purge_expired(settings: Settings) -> None:
    from vssid_broker.housekeeping import purge

    async with database(settings) as db, db.sessions.begin() as session:
        purged = await purge(session, utcnow(), settings)
    ended = purged.sessions
    print(
        f"purged: {purged.login_transactions} expired login transactions, "
        f"{ended.browser_sessions} browser sessions, {ended.refresh_tokens} refresh tokens of "
        f"ended families, {ended.rotated_refresh_tokens} spent refresh tokens, "
        f"{ended.used_jtis} used jtis, {purged.decided_review_cases} decided review cases, "
        f"{purged.withdrawn_consents} withdrawn consents, {purged.audit_events} audit events, "
        f"{purged.staff_console_sessions} staff console sessions"
    )
