"""`vssid-broker staff`: staff users of the console and the admin API: list, create, and the
changes an administrator makes. Every change names the operator in the audit trail; passwords
come from the environment or stdin."""

from __future__ import annotations

import argparse
import asyncio
import sys

from vssid_broker.cli.common import (
    HELP_FORMAT,
    Commands,
    add_command,
    command_settings,
    read_secret,
)
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow
from vssid_broker.errors import DomainError

STAFF_ROLES = ["reviewer", "approver", "auditor", "admin"]
STAFF_CHANGES = {
    "disable": "disable a staff user (their console sessions end, their tokens are refused)",
    "enable": "enable a disabled staff user again",
    "reset-password": "set a new password, read from VSSID_STAFF_PASSWORD or stdin",
    "reset-second-factor": "forget the authenticator: the next sign-in enrols a new one",
    "set-role": "change a staff user's role",
}
CLI_ACTOR = "operator:cli"
"""Who the audit trail names for changes made with this command."""
PASSWORD_VARIABLE = "VSSID_STAFF_PASSWORD"


def add(commands: Commands) -> None:
    staff = add_command(commands, "staff", "manage staff users (console and admin API)", run)
    actions = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    actions.add_parser(
        "list", help="list staff users, their roles and second factor", formatter_class=HELP_FORMAT
    )
    create = actions.add_parser(
        "create",
        help="create a staff user; the password is read from VSSID_STAFF_PASSWORD or stdin",
        formatter_class=HELP_FORMAT,
    )
    create.add_argument("--username", required=True, help="the sign-in name")
    create.add_argument("--role", required=True, choices=STAFF_ROLES, help="what they may do")
    create.add_argument(
        "--citizen-id",
        help="the staff member's own citizen ID: binds them to their own VssID account, so "
        "they never decide a case about it",
    )
    create.add_argument(
        "--account-id", type=int, help="the staff member's own VssID account, by its id"
    )
    for name, text in STAFF_CHANGES.items():
        change = actions.add_parser(name, help=text, formatter_class=HELP_FORMAT)
        change.add_argument("--username", required=True, help="the staff member to change")
        if name == "set-role":
            change.add_argument("--role", required=True, choices=STAFF_ROLES, help="the new role")


def run(args: argparse.Namespace) -> None:
    settings = command_settings()
    if args.staff_command == "list":
        asyncio.run(list_staff(settings))
    elif args.staff_command == "create":
        password = read_secret(PASSWORD_VARIABLE).rstrip("\n")
        asyncio.run(
            create_staff(
                settings, args.username, args.role, password, args.account_id, args.citizen_id
            )
        )
    else:
        password = None
        if args.staff_command == "reset-password":
            password = read_secret(PASSWORD_VARIABLE).rstrip("\n")
        role = getattr(args, "role", None)
        asyncio.run(change_staff(settings, args.username, args.staff_command, password, role))


async def create_staff(
    settings: Settings,
    username: str,
    role: str,
    password: str,
    account_id: int | None,
    citizen_id: str | None = None,
) -> None:
    from vssid_broker.admin import service as staff
    from vssid_broker.admin.models import StaffRole

    try:
        async with database(settings) as db, db.sessions.begin() as session:
            now = utcnow()
            user = await staff.create_staff_user(
                session,
                username=username,
                password=password,
                role=StaffRole(role),
                now=now,
                account_id=account_id,
                citizen_id=citizen_id,
            )
            staff.record_created(session, user, actor=CLI_ACTOR, now=now, request_id=None)
    except DomainError as error:
        sys.exit(f"staff user not created: {error.detail}")
    print(f"staff user {user.username} ({user.role}) created; second factor: enrol at /admin")


async def list_staff(settings: Settings) -> None:
    from vssid_broker.admin import service as staff

    async with database(settings) as db, db.sessions() as session:
        for user in await staff.list_staff(session):
            state = "disabled" if user.disabled_at else "active"
            factor = "totp" if user.totp_enrolled_at else "not-enrolled"
            own = "own-account-bound" if user.account_id else "-"
            print(f"{user.username:<20} {user.role:<9} {state:<8} {factor:<12} {own}")


async def change_staff(
    settings: Settings, username: str, command: str, password: str | None, role: str | None
) -> None:
    from vssid_broker.admin import service as staff
    from vssid_broker.admin.models import StaffRole

    change: staff.StaffChange = {
        "disable": "disable",
        "enable": "enable",
        "reset-password": "reset_password",
        "reset-second-factor": "reset_second_factor",
        "set-role": "role",
    }[command]  # type: ignore[assignment]
    try:
        async with database(settings) as db, db.sessions.begin() as session:
            target = await staff.find_staff(session, username)
            await staff.change_staff(
                session,
                target,
                change,
                actor=CLI_ACTOR,
                now=utcnow(),
                request_id=None,
                password=password,
                role=StaffRole(role) if role else None,
            )
    except DomainError as error:
        sys.exit(f"staff user not changed: {error.detail}")
    print(f"staff user {username}: {command} done")
