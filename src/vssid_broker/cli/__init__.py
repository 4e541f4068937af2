"""`vssid-broker`: serve, demo, migrate, seed, keys, purge, audit, staff, vneid-sim; `--version`.

Each command is a few lines over a service; `database(settings)` gives it the database and
cleans up after it. With `seeding`, the only broker code that knows the simulated VNeID."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta

import uvicorn

from vssid_broker import __version__, metrics, schema, sealing
from vssid_broker.config import Settings, SettingsInvalid, load_settings
from vssid_broker.db import DriverMissing, database, utcnow
from vssid_broker.errors import CommandRefused, DomainError
from vssid_broker.logging_setup import configure as configure_logging
from vssid_broker.sessions.keys import (
    KeyEncryptionKeyError,
    SigningKeys,
    load_key_encryption_key,
    parse_key_encryption_key,
)

DESCRIPTION = """\
The VssID sign-in broker: VssID accounts, sign-in through VNeID (level 2), session tokens.
Settings come from VSSID_* environment variables (see the README); `vssid-broker demo` runs
everything on one machine with demo data."""
SIGNING_KEY_ACTIONS = ("ensure", "rotate", "list", "rotate-kek")
CITIZEN_ID_KEY_ACTIONS = ("reseal-citizen-ids",)
"""`keys reseal-citizen-ids`: after a key-encryption-key rotation (docs/privacy.md)."""

# Every option's help shows its default.
HELP_FORMAT = argparse.ArgumentDefaultsHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vssid-broker", description=DESCRIPTION, formatter_class=HELP_FORMAT
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also log what the libraries say at INFO (Alembic's migration steps)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, formatter_class=HELP_FORMAT)

    serve = command("serve", "run the broker (the database must be migrated)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; with more than one, /metrics adds up every worker's values",
    )

    migrate = command("migrate", "bring the database schema to a revision")
    migrate.add_argument("--revision", default="head", help="Alembic revision to go to")
    migrate.add_argument("--downgrade", action="store_true", help="go down to --revision")

    seed = command(
        "seed", "insert the demo accounts, or with --accounts N synthetic accounts in bulk"
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

    keys = command("keys", "manage the broker's keys and re-seal citizen IDs")
    keys.add_argument(
        "action",
        choices=[*SIGNING_KEY_ACTIONS, *CITIZEN_ID_KEY_ACTIONS],
        help="ensure: create a signing key if none signs; rotate: publish a new one; list: show "
        "them; rotate-kek: re-encrypt every private key and sealed value under a new "
        "key-encryption key, read from VSSID_NEW_KEY_ENCRYPTION_KEY or stdin; "
        "reseal-citizen-ids: seal every citizen ID under the current key-encryption key",
    )
    keys.add_argument(
        "--publish-ahead-seconds",
        type=int,
        default=900,
        help="rotate: publish the new key this long before it signs (verifiers cache JWKS)",
    )

    command(
        "purge",
        "delete what is past its retention period: expired login transactions, sessions, "
        "refresh tokens and used jtis, decided review cases, withdrawn consents, old audit "
        "events (run it daily; docs/privacy.md)",
    )

    audit_command = command("audit", "the audit trail")
    audit_command.add_argument(
        "action", choices=["verify"], help="verify: prove the hash chain or name its first break"
    )

    staff = command("staff", "manage staff users (console and admin API)")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    staff_commands.add_parser(
        "list", help="list staff users, their roles and second factor", formatter_class=HELP_FORMAT
    )
    staff_create = staff_commands.add_parser(
        "create",
        help="create a staff user; the password is read from VSSID_STAFF_PASSWORD or stdin",
        formatter_class=HELP_FORMAT,
    )
    staff_create.add_argument("--username", required=True, help="the sign-in name")
    staff_create.add_argument("--role", required=True, choices=STAFF_ROLES, help="what they may do")
    staff_create.add_argument(
        "--citizen-id",
        help="the staff member's own citizen ID: binds them to their own VssID account, so "
        "they never decide a case about it",
    )
    staff_create.add_argument(
        "--account-id", type=int, help="the staff member's own VssID account, by its id"
    )
    for name, text in STAFF_CHANGES.items():
        change = staff_commands.add_parser(name, help=text, formatter_class=HELP_FORMAT)
        change.add_argument("--username", required=True, help="the staff member to change")
        if name == "set-role":
            change.add_argument("--role", required=True, choices=STAFF_ROLES, help="the new role")

    sim = command("vneid-sim", "run the simulated VNeID provider alone")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=int, default=9000, help="port to listen on")
    sim.add_argument(
        "--test-mode", action="store_true", help="turn on the /_test fault-scripting API"
    )

    demo = command("demo", "migrate, seed, and run broker + simulated VNeID")
    demo.add_argument("--port", type=int, default=8000, help="the broker's port")
    demo.add_argument("--sim-port", type=int, default=9000, help="the simulated VNeID's port")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    quiet_libraries(args.verbose)
    try:
        if args.command in {"migrate", "seed", "keys", "purge", "staff", "audit"}:
            sealing.install(sealing.CitizenIdKeys.from_settings(load_settings(Settings)))
        match args.command:
            case "serve":
                run_serve(args.host, args.port, args.workers)
            case "migrate":
                run_migrate(load_settings(Settings), args.revision, args.downgrade)
            case "seed" if args.accounts is not None:
                asyncio.run(
                    run_bulk_seed(
                        load_settings(Settings),
                        args.accounts,
                        args.vneid_citizens,
                        args.seed,
                        show_progress=not args.no_progress,
                        workers=args.workers,
                    )
                )
            case "seed":
                asyncio.run(run_seed(load_settings(Settings)))
            case "keys" if args.action in CITIZEN_ID_KEY_ACTIONS:
                asyncio.run(run_reseal(load_settings(Settings)))
            case "keys" if args.action == "rotate-kek":
                new = os.environ.get("VSSID_NEW_KEY_ENCRYPTION_KEY") or sys.stdin.readline()
                asyncio.run(run_rotate_kek(load_settings(Settings), new.strip()))
            case "keys":
                asyncio.run(
                    run_keys(load_settings(Settings), args.action, args.publish_ahead_seconds)
                )
            case "purge":
                asyncio.run(run_purge(load_settings(Settings)))
            case "audit":
                asyncio.run(run_audit_verify(load_settings(Settings)))
            case "staff" if args.staff_command == "create":
                password = os.environ.get("VSSID_STAFF_PASSWORD") or sys.stdin.readline()
                asyncio.run(
                    run_staff_create(
                        load_settings(Settings),
                        args.username,
                        args.role,
                        password.rstrip("\n"),
                        args.account_id,
                        args.citizen_id,
                    )
                )
            case "staff" if args.staff_command == "list":
                asyncio.run(run_staff_list(load_settings(Settings)))
            case "staff":
                password = None
                if args.staff_command == "reset-password":
                    password = (
                        os.environ.get("VSSID_STAFF_PASSWORD") or sys.stdin.readline()
                    ).rstrip("\n")
                asyncio.run(
                    run_staff_change(
                        load_settings(Settings),
                        args.username,
                        args.staff_command,
                        password,
                        getattr(args, "role", None),
                    )
                )
            case "vneid-sim":
                from vssid_broker.vneid_sim.config import SimSettings
                from vssid_broker.vneid_sim.server import run as run_sim

                if args.test_mode:
                    os.environ["VNEID_SIM_TEST_MODE"] = "true"
                load_settings(SimSettings)  # one line per bad setting, before the server builds
                run_sim(args.host, args.port, None)
            case "demo":
                run_demo(args.port, args.sim_port)
    except (
        schema.SchemaNotCurrent,
        DomainError,
        CommandRefused,
        SettingsInvalid,
        DriverMissing,
        KeyEncryptionKeyError,
    ) as error:
        sys.exit(str(error))


def quiet_libraries(verbose: bool) -> None:
    """Alembic announces every step at INFO; an operator asked for the result, not the steps."""
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)


def run_serve(host: str, port: int, workers: int) -> None:
    settings = load_settings(Settings)
    configure_logging(settings.log_level, settings.log_format)
    # Fail with one clear line, before any worker starts.
    asyncio.run(check_ready_to_serve(settings))
    if workers > 1 and settings.metrics_enabled:
        # Each worker writes its values to files here; /metrics adds them up.
        metrics.prepare_multiprocess_dir(
            os.environ.get(metrics.MULTIPROCESS_DIR_VARIABLE)
            or tempfile.mkdtemp(prefix="vssid-broker-metrics-")
        )
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


async def run_staff_create(
    settings: Settings,
    username: str,
    role: str,
    password: str,
    account_id: int | None,
    citizen_id: str | None = None,
) -> None:
    """The password comes from the environment or stdin, never the command line (which other
    users of the machine can read in the process list)."""
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


async def run_staff_list(settings: Settings) -> None:
    from vssid_broker.admin import service as staff

    async with database(settings) as db, db.sessions() as session:
        for user in await staff.list_staff(session):
            state = "disabled" if user.disabled_at else "active"
            factor = "totp" if user.totp_enrolled_at else "not-enrolled"
            own = "own-account-bound" if user.account_id else "-"
            print(f"{user.username:<20} {user.role:<9} {state:<8} {factor:<12} {own}")


async def run_staff_change(
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


async def run_bulk_seed(
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
        f"{ended.used_jtis} used jtis, {purged.decided_review_cases} decided review cases, "
        f"{purged.withdrawn_consents} withdrawn consents, {purged.audit_events} audit events, "
        f"{purged.staff_console_sessions} staff console sessions"
    )


async def run_reseal(settings: Settings) -> None:
    from vssid_broker.housekeeping import reseal_citizen_ids

    keys = sealing.installed()
    async with database(settings) as db:
        done = await reseal_citizen_ids(
            db.sessions, keys, progress=lambda table, rows: print(f"  {table}: {rows} re-sealed")
        )
    total = sum(done.rows.values())
    print(f"citizen IDs re-sealed under key {keys.current_kid}: {total}")


async def run_audit_verify(settings: Settings) -> None:
    from vssid_broker.audit.chain import verify

    async with database(settings) as db, db.sessions() as session:
        result = await verify(session)
    if result.broken_at is not None:
        sys.exit(
            f"audit chain BROKEN at entry {result.broken_at}: {result.problem} "
            f"({result.entries} entries before it verified)"
        )
    print(f"audit chain verified: {result.entries} entries")


def run_demo(port: int, sim_port: int) -> None:
    from vssid_broker.cli.demo import run

    asyncio.run(run(port, sim_port))


if __name__ == "__main__":
    main()
