"""`vssid-broker db grant`: the serving broker's least-privileged PostgreSQL role (privacy.md)."""

from __future__ import annotations

import argparse
import asyncio

from vssid_broker.cli.common import Commands, add_command, command_settings, read_secret
from vssid_broker.config import Settings
from vssid_broker.database_roles import grant_service_role
from vssid_broker.db import database
from vssid_broker.errors import CommandRefused

PASSWORD_VARIABLE = "DATABASE_SERVICE_ROLE_PASSWORD"


def add(commands: Commands) -> None:
    db = add_command(commands, "db", "the database's roles (PostgreSQL)", run)
    db.add_argument(
        "action",
        choices=["grant"],
        help="grant: give the service role what serving needs and no more; run as the tables' "
        "owner, again after every migration",
    )
    db.add_argument(
        "--service-role",
        help="the role the broker serves as; default VSSID_DATABASE_SERVICE_ROLE",
    )
    db.add_argument(
        "--create",
        action="store_true",
        help="create the role (LOGIN) when it does not exist, its password from "
        f"{PASSWORD_VARIABLE} or the first line of standard input (the owner needs CREATEROLE)",
    )


def run(args: argparse.Namespace) -> None:
    settings = command_settings()
    role = args.service_role or settings.database_service_role
    if not role:
        raise CommandRefused(
            "db grant needs the role: --service-role or VSSID_DATABASE_SERVICE_ROLE"
        )
    password = None
    if args.create:
        password = read_secret(PASSWORD_VARIABLE).strip()
    tables = asyncio.run(grant(settings, role, password))
    print(f"role {role} granted the service's privileges on {len(tables)} tables")


async def grant(settings: Settings, role: str, password: str | None = None) -> list[str]:
    async with database(settings) as db, db.engine.begin() as connection:
        return await grant_service_role(connection, role, create_with_password=password)
