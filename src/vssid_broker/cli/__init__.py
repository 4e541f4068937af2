"""`vssid-broker`: serve, demo, migrate, seed, keys, purge, staff, vneid-sim.

Each command is a few lines over a service; `database(settings)` gives it the database and
cleans up after it. With `seeding`, the only broker code that knows the simulated VNeID."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

import uvicorn

from vssid_broker import schema
from vssid_broker.config import Settings
from vssid_broker.db import database, utcnow
from vssid_broker.errors import CommandRefused, DomainError
from vssid_broker.logging_setup import configure as configure_logging
from vssid_broker.sessions.keys import (
    KeyEncryptionKeyError,
    SigningKeys,
    load_key_encryption_key,
    parse_key_encryption_key,
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vssid-broker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the broker (the database must be migrated)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    migrate = commands.add_parser("migrate", help="bring the database schema to a revision")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument("--downgrade", action="store_true", help="go down to --revision")

    seed = commands.add_parser(
        "seed", help="insert the demo accounts, or with --accounts N synthetic accounts in bulk"
    )
    seed.add_argument("--demo", action="store_true", default=True)
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

    keys = commands.add_parser("keys", help="manage the broker's token signing keys")
    keys.add_argument(
        "action",
        choices=["ensure", "rotate", "list", "rotate-kek"],
        help="rotate-kek: re-encrypt every private key and sealed value under a new "
        "key-encryption key, read from VSSID_NEW_KEY_ENCRYPTION_KEY or stdin",
    )
    keys.add_argument(
        "--publish-ahead-seconds",
        type=int,
        default=900,
        help="rotate: publish the new key this long before it signs (verifiers cache JWKS)",
    )

    commands.add_parser(
        "purge",
        help="delete expired login transactions, sessions, refresh tokens and used jtis "
        "(run it daily)",
    )

    staff = commands.add_parser("staff", help="manage staff users of the admin API")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True)
    staff_create = staff_commands.add_parser(
        "create",
        help="create a staff user; the password is read from VSSID_STAFF_PASSWORD or stdin",
    )
    staff_create.add_argument("--username", required=True)
    staff_create.add_argument("--role", required=True, choices=["reviewer", "admin"])
    staff_create.add_argument(
        "--account-id", type=int, help="the staff member's own VssID account, if any"
    )

    sim = commands.add_parser("vneid-sim", help="run the simulated VNeID provider alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9000)
    sim.add_argument(
        "--test-mode", action="store_true", help="turn on the /_test fault-scripting API"
    )

    demo = commands.add_parser("demo", help="migrate, seed, and run broker + simulated VNeID")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--sim-port", type=int, default=9000)

    args = parser.parse_args(argv)
    configure_logging()
    try:
        match args.command:
            case "serve":
                run_serve(args.host, args.port, args.workers)
            case "migrate":
                run_migrate(Settings(), args.revision, args.downgrade)
            case "seed" if args.accounts is not None:
                asyncio.run(
                    run_bulk_seed(Settings(), args.accounts, args.vneid_citizens, args.seed)
                )
            case "seed":
                asyncio.run(run_seed(Settings()))
            case "keys" if args.action == "rotate-kek":
                new = os.environ.get("VSSID_NEW_KEY_ENCRYPTION_KEY") or sys.stdin.readline()
                asyncio.run(run_rotate_kek(Settings(), new.strip()))
            case "keys":
                asyncio.run(run_keys(Settings(), args.action, args.publish_ahead_seconds))
            case "purge":
                asyncio.run(run_purge(Settings()))
            case "staff":
                password = os.environ.get("VSSID_STAFF_PASSWORD") or sys.stdin.readline()
                asyncio.run(
                    run_staff_create(
                        Settings(), args.username, args.role, password.rstrip("\n"), args.account_id
                    )
                )
            case "vneid-sim":
                from vssid_broker.vneid_sim.server import run as run_sim

                if args.test_mode:
                    os.environ["VNEID_SIM_TEST_MODE"] = "true"
                run_sim(args.host, args.port, None)
            case "demo":
                run_demo(args.port, args.sim_port)
    except (
        schema.SchemaNotCurrent,
        DomainError,
        CommandRefused,
        KeyEncryptionKeyError,
    ) as error:
        sys.exit(str(error))


def run_serve(host: str, port: int, workers: int) -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    # Fail with one clear line, before any worker starts.
    asyncio.run(check_ready_to_serve(settings))
    uvicorn.run(
        "vssid_broker.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        # The client address for rate limits comes from proxy headers only when the peer is
        # one of VSSID_TRUSTED_PROXIES (web/client_address.py), never from uvicorn's own rule.
        proxy_headers=False,
        access_log=False,
    )


async def check_ready_to_serve(settings: Settings) -> None:
    """The schema is current and the key-encryption key opens the signing keys."""
    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions() as session:
        await keys.require_openable(session)


def run_migrate(settings: Settings, revision: str, downgrade: bool) -> None:
    if downgrade:
        schema.downgrade(settings.database_url, revision)
    else:
        schema.upgrade(settings.database_url, revision)
    print(f"database at revision {revision if downgrade else schema.head_revision()}")


async def run_seed(settings: Settings) -> int:
    from vssid_broker.seeding import seed_demo_data

    async with database(settings, current_schema=False) as db, db.sessions.begin() as session:
        seeded = await seed_demo_data(session, issuer=settings.vneid_issuer, now=utcnow())
    print(f"demo accounts added: {seeded.accounts}")
    print(f"demo review cases added: {seeded.cases}")
    return seeded.accounts


async def run_staff_create(
    settings: Settings, username: str, role: str, password: str, account_id: int | None
) -> None:
    """The password comes from the environment or stdin, never the command line (which other
    users of the machine can read in the process list)."""
    from vssid_broker.admin.models import StaffRole
    from vssid_broker.admin.service import create_staff_user

    try:
        async with database(settings) as db, db.sessions.begin() as session:
            user = await create_staff_user(
                session,
                username=username,
                password=password,
                role=StaffRole(role),
                now=utcnow(),
                account_id=account_id,
            )
    except DomainError as error:
        sys.exit(f"staff user not created: {error.detail}")
    print(f"staff user {user.username} ({user.role}) created")


async def run_bulk_seed(settings: Settings, accounts: int, vneid_citizens: int, seed: int) -> None:
    from vssid_broker.seeding.bulk import seed_accounts

    async with database(settings) as db:
        report = await seed_accounts(
            db.engine,
            accounts,
            vneid_citizens=vneid_citizens,
            seed=seed,
            provider=settings.vneid_issuer,
        )
    print(
        f"bulk accounts added: {report.accounts} (insurance periods {report.periods}, "
        f"health cards {report.cards}, links {report.links}) in {report.seconds:.1f} s"
    )


async def run_keys(settings: Settings, action: str, publish_ahead_seconds: int) -> None:
    from sqlalchemy import select

    from vssid_broker.sessions.models import SigningKey

    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions.begin() as session:
        now = utcnow()
        if action == "ensure":
            await keys.ensure_active(session, now)
        elif action == "rotate":
            kid = await keys.rotate(session, now, timedelta(seconds=publish_ahead_seconds))
            print(f"new key {kid} is published now and signs from +{publish_ahead_seconds}s")
        for row in await session.scalars(select(SigningKey).order_by(SigningKey.signs_from)):
            retired = row.retired_at.isoformat() if row.retired_at else "-"
            signs_from = row.signs_from.isoformat()
            print(f"{row.kid}  {row.alg}  signs_from={signs_from}  retired={retired}")


async def run_rotate_kek(settings: Settings, new_key: str) -> None:
    """The new key comes from the environment or stdin, never the command line. One
    transaction: every value re-encrypted, or none. Then every process must run with it."""
    if not new_key:
        raise CommandRefused("give the new key in VSSID_NEW_KEY_ENCRYPTION_KEY or on stdin")
    new = parse_key_encryption_key(new_key)
    keys = SigningKeys(settings, load_key_encryption_key(settings))
    async with database(settings) as db, db.sessions.begin() as session:
        count = await keys.rotate_key_encryption_key(session, new)
    print(
        f"re-encrypted {count} values under the new key-encryption key; set "
        "VSSID_KEY_ENCRYPTION_KEY to it for every broker process and restart them"
    )
    if settings.key_encryption_key is None:
        print(f"(the old key is still in {settings.key_encryption_key_file}: replace it)")


async def run_purge(settings: Settings) -> None:
    from vssid_broker.housekeeping import purge

    async with database(settings) as db, db.sessions.begin() as session:
        purged = await purge(session, utcnow(), settings)
    ended = purged.sessions
    print(
        f"purged: {purged.login_transactions} expired login transactions, "
        f"{ended.browser_sessions} browser sessions, {ended.refresh_tokens} refresh tokens of "
        f"ended families, {ended.rotated_refresh_tokens} spent refresh tokens, "
        f"{ended.used_jtis} used jtis"
    )


def run_demo(port: int, sim_port: int) -> None:
    from vssid_broker.cli.demo import run

    asyncio.run(run(port, sim_port))


if __name__ == "__main__":
    main()
