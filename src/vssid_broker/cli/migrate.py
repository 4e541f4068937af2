"""`vssid-broker migrate`: the database schema to a revision, up or down."""

from __future__ import annotations

import argparse
import asyncio

from vssid_broker import schema
from vssid_broker.cli.common import Commands, add_command, command_settings
from vssid_broker.cli.db import grant


def add(commands: Commands) -> None:
    migrate = add_command(commands, "migrate", "bring the database schema to a revision", run)
    migrate.add_argument("--revision", default="head", help="Alembic revision to go to")
    migrate.add_argument("--downgrade", action="store_true", help="go down to --revision")


def run(args: argparse.Namespace) -> None:
    settings = command_settings()
    if args.downgrade:
        schema.downgrade(settings.database_url, args.revision)
    else:
        schema.upgrade(settings.database_url, args.revision)
        if settings.database_service_role and not settings.is_sqlite:
            # New tables get the service role's grants in the same step.
            tables = asyncio.run(grant(settings, settings.database_service_role))
            print(f"role {settings.database_service_role} granted on {len(tables)} tables")
    print(f"database at revision {args.revision if args.downgrade else schema.head_revision()}")
