"""`vssid-broker`: serve, demo, migrate, db, seed, accounts, keys, purge, audit, staff, vneid-sim;
`--version`.

One module per command group (serve.py, migrate.py, db.py, seed.py, accounts.py, keys.py,
purge.py, audit.py, staff.py, vneid_sim.py, demo.py), each its options and a few lines over a
service; `database(settings)` gives it the database and cleans up after it. Here only the
parser they make together (of the command run, only its own module is imported: a start of
`vssid-broker vneid-sim` or `staff list` pays for no other command's imports), and `main`: the
one place a refusal becomes an exit with one line. With
`seeding`, the only broker code that knows the simulated VNeID."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib import import_module

from vssid_broker import __version__
from vssid_broker.cli.common import HELP_FORMAT, Commands, add_command
from vssid_broker.logging_setup import configure as configure_logging

DESCRIPTION = """\
The VssID sign-in broker: VssID accounts, sign-in through VNeID (level 2), session tokens.
Settings come from VSSID_* environment variables (docs/settings.md); `vssid-broker demo` runs
everything on one machine with demo data."""

GROUPS = {
    "serve": "serve",
    "migrate": "migrate",
    "db": "db",
    "seed": "seed",
    "accounts": "accounts",
    "keys": "keys",
    "purge": "purge",
    "audit": "audit",
    "staff": "staff",
    "vneid-sim": "vneid_sim",
}
"""Each command and the module of vssid_broker.cli that adds it (`demo` is added here)."""


def refusals() -> tuple[type[Exception], ...]:
    """What a command may meet that the operator can mend: one line, exit status 1, no
    traceback. Imported when a command fails, not at every start."""
    from vssid_broker import schema
    from vssid_broker.audit.anchors import AnchorError
    from vssid_broker.config import SettingsInvalid
    from vssid_broker.database_roles import RoleRefused
    from vssid_broker.db import DriverMissing
    from vssid_broker.errors import CommandRefused, DomainError
    from vssid_broker.sealing import KeyUnusable, SealedValueRefused

    return (
        schema.SchemaNotCurrent,
        DomainError,
        CommandRefused,
        SettingsInvalid,
        DriverMissing,
        KeyUnusable,
        SealedValueRefused,
        AnchorError,
        RoleRefused,
    )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's options; with `command` (one of GROUPS), only that command's, so a
    command starts without importing what only the others use."""
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
    chosen = [command] if command in GROUPS else list(GROUPS)
    for name in chosen:
        import_module(f"vssid_broker.cli.{GROUPS[name]}").add(commands)
    if command not in GROUPS:
        add_demo(commands)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The command `argv` names: its first word that is not an option (the top-level options
    take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> None:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(command_named(words)).parse_args(words)
    configure_logging()
    quiet_libraries(args.verbose)
    try:
        args.run(args)
    except Exception as error:
        if isinstance(error, refusals()):
            sys.exit(str(error))
        raise


def quiet_libraries(verbose: bool) -> None:
    """Alembic announces every step at INFO; an operator asked for the result, not the steps."""
    logging.getLogger("alembic").setLevel(logging.INFO if verbose else logging.WARNING)


def add_demo(commands: Commands) -> None:
    """`demo`'s options; demo.py runs it, and is imported only then (it builds both apps)."""
    demo = add_command(
        commands, "demo", "migrate, seed, and run broker + simulated VNeID", run_demo
    )
    demo.add_argument("--port", type=int, default=8000, help="the broker's port")
    demo.add_argument("--sim-port", type=int, default=9000, help="the simulated VNeID's port")
    demo.add_argument(
        "--vneid-protocol",
        choices=["openid-connect", "vneid-encrypted"],
        default="openid-connect",
        help="the profile both speak: standard OpenID Connect, or VNeID's encrypted dialect",
    )


def run_demo(args: argparse.Namespace) -> None:
    from vssid_broker.cli.demo import run

    asyncio.run(run(args.port, args.sim_port, args.vneid_protocol))


if __name__ == "__main__":
    main()
